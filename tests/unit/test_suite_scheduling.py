"""The suite's xdist scheduling (tests/conftest.py) is safe: a file spread test by test shares no module fixture."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, SPREAD_PER_TEST


class _FixtureScopes:
    """A pytest plugin recording, per collected test, its fixtures that outlive one test (besides session)."""

    def __init__(self) -> None:
        self.shared: dict[str, list[str]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            defs = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
            self.shared[item.nodeid] = sorted(name for name, d in defs.items()
                                              if d and d[-1].scope in ("class", "module", "package"))


def test_files_spread_test_by_test_exist_and_share_no_module_scoped_fixture() -> None:
    for file in sorted(SPREAD_PER_TEST):
        assert (ROOT / file).is_file(), f"{file} (in tests/conftest.py SPREAD_PER_TEST) does not exist"
    scopes = _FixtureScopes()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(ROOT),
                        *(str(ROOT / f) for f in sorted(SPREAD_PER_TEST))], plugins=[scopes])
    assert code == 0
    assert {nodeid.split("::")[0] for nodeid in scopes.shared} == set(SPREAD_PER_TEST)
    shared = {nodeid: names for nodeid, names in scopes.shared.items() if names}
    assert not shared, f"spread over workers but sharing a module-scoped fixture (one per worker): {shared}"


def test_the_scope_check_sees_a_module_scoped_fixture() -> None:
    """Guards the check above on a file that does share one (the PostgreSQL failover cluster)."""
    scopes = _FixtureScopes()
    file = ROOT / "tests/runtime/test_postgres_failover.py"
    assert pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(ROOT),
                        str(file)], plugins=[scopes]) == 0
    assert any("cluster" in names for names in scopes.shared.values())
