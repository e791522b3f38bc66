"""Shared fixtures: real helm binaries (4 and 3), cached renders, and skips with one clear reason.

Helm 3 and helm 4 are both required (`make setup` installs them as .venv/bin/helm3 and .venv/bin/helm):
a test that needs one that is missing fails with one line saying how to install it. It never skips, so
a machine without helm 3 cannot pass the suite with the helm 3 half unrun. Every test gets its binary
from :func:`helm_path` (directly, through :func:`render`, or through the ``helm_major`` fixture).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tools import helm
from tools.manifest import KubeObject

ROOT = helm.REPO_ROOT
CHARTS = ROOT / "charts"
VALUES = ROOT / "values"


@functools.cache
def helm_path(major: int) -> str:
    """The helm ``major`` binary; a missing one fails the calling test with one line naming the fix."""
    try:
        return helm.find_helm(major)
    except helm.HelmError as exc:
        pytest.fail(f"{exc} (helm 3 and 4 are both required)", pytrace=False)


RENDER_CACHE_ENV = "NOVA_TEST_RENDER_CACHE"


def pytest_configure(config: pytest.Config) -> None:
    """One render cache directory per test run, made by the controller before pytest-xdist starts the workers
    (they inherit the environment), so every worker and every doc-test clone shares it; removed at the end."""
    if not hasattr(config, "workerinput") and RENDER_CACHE_ENV not in os.environ:
        os.environ[RENDER_CACHE_ENV] = tempfile.mkdtemp(prefix="nova-render-cache-")
        config._nova_render_cache = os.environ[RENDER_CACHE_ENV]  # type: ignore[attr-defined]


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
    returns objects with their template."""
    return list(_render_cached(major, str(chart), tuple(map(str, values)), tuple(set_values), namespace,
                               kube_version, tuple(api_versions)))


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
# serves the file's renders. These files are spread test by test instead: each test starts its own daemons
# and together they are most of the suite's wall time (waiting on failovers). A test checks that none of
# them uses a module-scoped fixture.
SPREAD_PER_TEST = frozenset({"tests/runtime/test_redis_failover.py", "tests/runtime/test_cleanup.py"})


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: the suite also runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with the files in SPREAD_PER_TEST distributed test by test."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileSchedulingSpreadingDaemonTests(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return nodeid if file in SPREAD_PER_TEST else file

    return FileSchedulingSpreadingDaemonTests(config, log)
