"""Shared fixtures: real helm binaries (4 and 3), cached renders, and skips with one clear reason.

Helm 3 and helm 4 are both required (`make setup` installs them as .venv/bin/helm3 and .venv/bin/helm):
a test that needs one that is missing fails with one line saying how to install it. It never skips, so
a machine without helm 3 cannot pass the suite with the helm 3 half unrun. Every test gets its binary
from :func:`helm_path` (directly, through :func:`render`, or through the ``helm_major`` fixture).
"""

from __future__ import annotations

import ast
import collections
import functools
import gc
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tools import helm, kube_versions
from tools.manifest import KubeObject

ROOT = helm.REPO_ROOT
CHARTS = ROOT / "charts"
VALUES = ROOT / "values"
# The Kubernetes version a test render is for unless it names one (see render).
DEFAULT_KUBE_VERSION = kube_versions.full(kube_versions.supported()[-1])


@functools.cache
def helm_path(major: int) -> str:
    """The helm ``major`` binary; a missing one fails the calling test with one line naming the fix."""
    try:
        return helm.find_helm(major)
    except helm.HelmError as exc:
        pytest.fail(f"{exc} (helm 3 and 4 are both required)", pytrace=False)


RENDER_CACHE_ENV = "NOVA_TEST_RENDER_CACHE"

# Python's full collections scan every object a worker holds (compiled schemas, parsed renders, the runtime
# harnesses' threads and clients) and stop all its threads meanwhile, a load generator and a proxy pump included.
# A worker runs no full collection on its own (the young generations still free the cycles that die young, which
# are nearly all of them), and what the imports and collection made is frozen out of every scan.
# Measured in a fresh-clone `make test` (8 workers, process CPU inside gc callbacks): 17.1 CPU s of collections,
# 12.5 of them full ones, -> 4.3 s; the largest worker's peak RSS 215 -> 222 MB.
GC_THRESHOLDS = (700, 10, 1_000_000)
gc.set_threshold(*GC_THRESHOLDS)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()


# The runtime tests' bounds (a failover within its goal, a sampler every ~100 ms) assume their daemons get the CPU
# when they wake. On a busy host (another run, CI's neighbours) the unit tests' helm and Python work is what can
# wait: each worker runs a test that is not marked ``runtime`` at this nice value and a runtime test at 0, so the
# daemons and threads a runtime test starts run at 0 and the other workers' renders yield to them. Only root may
# lower a nice value again, so other users' workers keep theirs (their runtime tests that need root skip anyway).
# The nice value is per thread on Linux: this sets the main thread's, which runs the tests and forks their children.
UNIT_TEST_NICENESS = 10


def _set_niceness(value: int) -> None:
    if os.geteuid() == 0 and os.getpriority(os.PRIO_PROCESS, 0) != value:
        os.setpriority(os.PRIO_PROCESS, 0, value)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test's fixtures start anything: 0 for a runtime test, UNIT_TEST_NICENESS for any other."""
    _set_niceness(0 if item.get_closest_marker("runtime") else UNIT_TEST_NICENESS)


def pytest_configure(config: pytest.Config) -> None:
    """One render cache directory per test run, made by the controller before pytest-xdist starts the workers
    (they inherit the environment), so every worker and every doc-test clone shares it; removed at the end."""
    if not hasattr(config, "workerinput") and RENDER_CACHE_ENV not in os.environ:
        os.environ[RENDER_CACHE_ENV] = tempfile.mkdtemp(prefix="nova-render-cache-")
        config._nova_render_cache = os.environ[RENDER_CACHE_ENV]  # type: ignore[attr-defined]
    if not hasattr(config, "workerinput"):  # what pytest_sessionfinish compares with
        config._nova_sources_before = _files_not_in_git()  # type: ignore[attr-defined]


# What helm reads and the suite shares renders of: a test must not leave files there (a bytecode cache written
# next to a chart's script made the tree differ from a fresh clone's, so their renders no longer shared entries).
SOURCES = ("charts", "values")


def _files_not_in_git() -> set[str] | None:
    """The untracked and ignored files under SOURCES, or None outside a git checkout."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "ls-files", "--others", "-z", "--", *SOURCES], cwd=ROOT, capture_output=True,
                          check=False)
    return set(proc.stdout.decode().split("\0")) - {""} if proc.returncode == 0 else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when its tests left new files in the chart or values sources, naming them."""
    before = getattr(session.config, "_nova_sources_before", None)
    after = _files_not_in_git() if before is not None else None
    left = sorted(after - before) if after is not None and before is not None else []
    if left:
        session.config.get_terminal_writer().line(
            f"\nthe tests left files in {' or '.join(s + '/' for s in SOURCES)}, where no test may write (use tmp_path): "
            f"{', '.join(left[:10])}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "_nova_render_cache", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(RENDER_CACHE_ENV, None)


def render_cache() -> str | None:
    """The run's shared directory of renders addressed by content (tools.helm.render_text's ``cache``)."""
    return os.environ.get(RENDER_CACHE_ENV)


@functools.cache
def _render_cached(
    major: int, chart: str, values: tuple[str, ...], set_values: tuple[str, ...], namespace: str,
    kube_version: str | None, api_versions: tuple[str, ...],
) -> tuple[KubeObject, ...]:
    return tuple(
        helm.render(chart, values, set_values, helm=helm_path(major), namespace=namespace,
                    kube_version=kube_version, api_versions=api_versions, cache=render_cache())
    )


def render(
    chart: str | Path, values: Sequence[str | Path] = (), set_values: Sequence[str] = (), *,
    major: int = 4, namespace: str = "default", kube_version: str | None = None,
    api_versions: Sequence[str] = (),
) -> list[KubeObject]:
    """Render through real helm, cached per argument set in this process and by content across the run's
    workers (renders with random values look alike here: a test of fresh randomness calls tools.helm itself);
    returns objects with their template.

    Without ``kube_version``, for the newest supported version (DEFAULT_KUBE_VERSION). That is what helm 4
    renders for by default, so the objects are the same; naming it makes the render the one ``tools.lint``
    and test_nova_render.py make of the same inputs (one cache entry, one helm run), and helm 3 (whose own
    default is older) renders for the same version as helm 4."""
    return list(_render_cached(major, str(chart), tuple(map(str, values)), tuple(set_values), namespace,
                               kube_version or DEFAULT_KUBE_VERSION, tuple(api_versions)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``helm_major`` is helm 4, plus helm 3 for tests marked ``helm3``.

    Render output needs no helm 3 rerun: tests/unit/test_nova_render.py proves helm 3 and 4 render the
    same objects for every profile of the umbrella, which renders both subcharts and the library. Tests
    of what may differ between the two (error messages, schema validation, values parsing, helm commands)
    carry ``@pytest.mark.helm3`` and run with both."""
    if "helm_major" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("helm3") is not None
        majors = [4, 3] if both else [4]
        metafunc.parametrize("helm_major", majors, ids=[f"helm{m}" for m in majors], indirect=True)


@pytest.fixture
def helm_major(request: pytest.FixtureRequest) -> int:
    """The helm major version of this run (see pytest_generate_tests); a missing binary fails at setup."""
    helm_path(request.param)
    return request.param


def require_binaries(*names: str) -> None:
    """Skip the calling test, naming what to install, when a daemon binary is missing."""
    missing = [n for n in names if not (shutil.which(n) or Path(n).exists())]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run `make setup` as root (apt-get) to install the test daemons")


# Under pytest-xdist, `make test` runs `--dist loadfile`: one worker runs a whole test file, so a module-scoped
# fixture (a started Redis or PostgreSQL cluster, a registry, a fresh clone, generated charts) is built once,
# ordered module fixtures (the PostgreSQL failover steps) keep their order and the per-worker render cache
# serves the file's renders. The runtime files, most of the suite's wall time (waiting on failovers), are cut
# finer: into the groups of tests that share a module-scoped fixture (a group runs on one worker in file order;
# a test sharing none is a unit of its own), read from the file's source (work_units). And the units start
# longest first (FILE_SECONDS), so that no long cluster test starts last while the other workers idle.
SPLIT_DIR = "tests/runtime/"
# Seconds per file in one `make test` on 2 cores (pytest --junitxml, 2026-12-01): the slow ones start first (the
# longest-processing-time rule), so that no long file starts last while the other workers idle. Only the order
# matters; a runtime file not listed counts as RUNTIME_DEFAULT_S, another file as 0 (collection order after the
# listed ones), a unit of a split file as its file's share by number of tests.
FILE_SECONDS = {
    "tests/runtime/test_postgres_backup.py": 240, "tests/runtime/test_redis_faults.py": 155,
    "tests/runtime/test_redis_failover.py": 139, "tests/runtime/test_postgres_faults.py": 139,
    "tests/runtime/test_postgres_zone_faults.py": 70,
    "tests/runtime/test_tls.py": 90, "tests/runtime/test_postgres_failover.py": 119,
    "tests/runtime/test_postgres_config_apply.py": 73, "tests/runtime/test_redis_backup.py": 63,
    "tests/runtime/test_metrics_exist.py": 57, "tests/runtime/test_pooler.py": 38,
    "tests/runtime/test_postgres_isolation.py": 32, "tests/runtime/test_postgres_volumes.py": 30,
    "tests/runtime/test_s3_server.py": 20, "tests/runtime/test_cleanup.py": 18, "tests/unit/test_nova_scripts.py": 20,
    "tests/unit/test_docs.py": 15, "tests/unit/test_helm.py": 12, "tests/schema/test_real_charts.py": 11,
    "tests/unit/test_escape_hatches.py": 10, "tests/unit/test_gitops.py": 10, "tests/unit/test_nova_render.py": 9,
    "tests/unit/test_nova_common.py": 8, "tests/unit/test_sentinel_credentials.py": 8,
    "tests/lint/test_repo_charts.py": 7, "tests/unit/test_ctlint.py": 7, "tests/unit/test_postgres_chart.py": 6,
}
RUNTIME_DEFAULT_S = 10


def _fixture_scope(node: ast.FunctionDef) -> str | None:
    """The scope of a ``@pytest.fixture`` function ("function" when not given), None for anything else."""
    for deco in node.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        target = call.func if call else deco
        if isinstance(target, ast.Attribute) and target.attr == "fixture" or \
                isinstance(target, ast.Name) and target.id == "fixture":
            for kw in call.keywords if call else []:
                if kw.arg == "scope" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
            return "function"
    return None


@functools.cache
def file_groups(path: str) -> dict[str, str]:
    """Test function name -> the first test (in file order) of its group: tests reaching a common fixture of
    a scope wider than function, through the fixtures' own arguments, are one group."""
    tree = ast.parse((ROOT / path).read_text())
    fixtures: dict[str, tuple[str, list[str]]] = {}
    tests: list[tuple[str, list[str]]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = [a.arg for a in node.args.args]
            scope = _fixture_scope(node)
            if scope is not None:
                fixtures[node.name] = (scope, args)
            elif node.name.startswith("test"):
                tests.append((node.name, args))

    def shared(names: list[str], seen: set[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            if name in fixtures and name not in seen:
                seen.add(name)
                if fixtures[name][0] != "function":
                    out.add(name)
                out |= shared(fixtures[name][1], seen)
        return out

    order = {name: i for i, (name, _) in enumerate(tests)}
    parent = {name: name for name in order}  # union-find: a group is named after its first test

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    first_user: dict[str, str] = {}  # shared fixture -> the first test using it
    for name, args in tests:
        for fixture in shared(args, set()):
            if fixture not in first_user:
                first_user[fixture] = name
                continue
            a, b = sorted((find(first_user[fixture]), find(name)), key=order.__getitem__)
            parent[b] = a
    return {name: find(name) for name in order}


def work_unit(nodeid: str) -> str:
    """The unit of work a test runs in: its file, or for a runtime file its fixture group."""
    file, _, rest = nodeid.partition("::")
    if not file.startswith(SPLIT_DIR) or not rest:
        return file
    name = rest.split("[", 1)[0].split("::")[0]
    return f"{file}::{file_groups(file).get(name, name)}"


def _unit_weights(nodeids: list[str]) -> dict[str, float]:
    """Each work unit's estimated seconds: its file's FILE_SECONDS, a split file's shared by number of tests."""
    units = {n: work_unit(n) for n in nodeids}
    per_file = collections.Counter(n.partition("::")[0] for n in nodeids)
    per_unit = collections.Counter(units.values())
    weights = {}
    for unit, count in per_unit.items():
        file = unit.partition("::")[0]
        seconds = FILE_SECONDS.get(file, RUNTIME_DEFAULT_S if file.startswith(SPLIT_DIR) else 0)
        weights[unit] = seconds * count / per_file[file]
    return weights


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the units longest first (FILE_SECONDS), each unit's tests together in file order, the rest
    in collection order (the scheduler keeps this order: --no-loadscope-reorder)."""
    if not getattr(config, "workerinput", None):
        return
    weights = _unit_weights([i.nodeid for i in items])
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(work_unit(item.nodeid), []).append(item)
    order = sorted(units, key=lambda u: -weights[u])  # stable: ties keep collection order
    items[:] = [item for unit in order for item in units[unit]]


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: the suite also runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with the runtime files cut into their fixture groups (work_unit)."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileSchedulingSplittingRuntimeFiles(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FileSchedulingSplittingRuntimeFiles(config, log)
