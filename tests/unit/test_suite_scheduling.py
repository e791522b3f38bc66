"""The suite's xdist scheduling (tests/conftest.py) is safe: the runtime files are cut into work units exactly
along the module-scoped fixtures their tests share, as pytest itself resolves them."""

from __future__ import annotations

import os

import pytest

from tests.conftest import (
    FILE_SECONDS,
    ROOT,
    SPLIT_DIR,
    UNIT_TEST_NICENESS,
    file_groups,
    pytest_runtest_setup,
    work_unit,
)

RUNTIME_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / SPLIT_DIR).glob("test_*.py"))


class _FixtureScopes:
    """A pytest plugin recording, per collected test, its fixtures that outlive one test (besides session)."""

    def __init__(self) -> None:
        self.shared: dict[str, list[str]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            defs = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
            self.shared[item.nodeid] = sorted(name for name, d in defs.items()
                                              if d and d[-1].scope in ("class", "module", "package"))


def _collect(files: list[str]) -> dict[str, list[str]]:
    scopes = _FixtureScopes()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(ROOT),
                        *(str(ROOT / f) for f in files)], plugins=[scopes])
    assert code == 0
    return scopes.shared


def _components(shared: dict[str, list[str]]) -> set[frozenset[str]]:
    """Groups of tests (by function name, per file) that pytest connects through a shared fixture."""
    groups: list[set[str]] = []
    fixtures: list[set[str]] = []
    for nodeid, names in shared.items():
        me, mine = {nodeid.split("[")[0]}, {f"{nodeid.split('::')[0]}:{n}" for n in names}
        for i in [i for i, f in enumerate(fixtures) if f & mine][::-1]:
            me |= groups.pop(i)
            mine |= fixtures.pop(i)
        groups.append(me)
        fixtures.append(mine)
    return {frozenset(g) for g in groups}


def test_work_units_are_exactly_the_groups_pytest_connects_by_module_scoped_fixtures() -> None:
    shared = _collect(RUNTIME_FILES)
    assert {n.split("::")[0] for n in shared} == set(RUNTIME_FILES)
    expected = _components(shared)
    units: dict[str, set[str]] = {}
    for nodeid in shared:
        units.setdefault(work_unit(nodeid), set()).add(nodeid.split("[")[0])
    assert {frozenset(u) for u in units.values()} == expected


def test_the_split_sees_a_shared_cluster_and_a_test_on_its_own() -> None:
    """Guards the check above: the failover cluster keeps its file together; a backup test with no shared
    fixture (the PVC round trip) is a unit of its own."""
    assert len(set(file_groups("tests/runtime/test_postgres_failover.py").values())) == 1
    backup = file_groups("tests/runtime/test_postgres_backup.py")
    assert backup["test_pvc_repository_backs_up_and_restores_into_a_fresh_cluster"] == \
        "test_pvc_repository_backs_up_and_restores_into_a_fresh_cluster"
    assert len(set(backup.values())) == 2
    assert work_unit("tests/unit/test_helm.py::test_x[4]") == "tests/unit/test_helm.py"


def test_every_timed_file_exists() -> None:
    missing = sorted(f for f in FILE_SECONDS if not (ROOT / f).is_file())
    assert not missing, f"tests/conftest.py FILE_SECONDS names files that are gone: {missing}"


class _Item:
    """What pytest_runtest_setup reads of a test item: its markers."""

    def __init__(self, *markers: str) -> None:
        self.markers = markers

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def test_a_runtime_test_runs_at_nice_0_and_any_other_at_the_unit_niceness() -> None:
    """Root's workers run this (not runtime) test at UNIT_TEST_NICENESS; the hook moves a worker to 0 before a
    runtime test's fixtures start daemons and back before the next other test. Other users' workers keep theirs."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        pytest_runtest_setup(_Item("runtime"))  # type: ignore[arg-type]
        at_runtime = os.getpriority(os.PRIO_PROCESS, 0)
        pytest_runtest_setup(_Item())  # type: ignore[arg-type]
        at_unit = os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        if os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, before)
    if os.geteuid() == 0:
        assert before == UNIT_TEST_NICENESS, "this test did not start at the unit niceness"
        assert (at_runtime, at_unit) == (0, UNIT_TEST_NICENESS)
    else:
        assert at_runtime == at_unit == before
