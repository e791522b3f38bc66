"""The one place that finds and runs helm.

Everything else in tools/ and tests/ takes the objects this module returns, never file paths:
values -> helm -> objects -> (schema validation, policy rules, runtime tests).

Usage::

    from tools import helm
    objs = helm.render("charts/nova", values=["values/local.yaml"], set_values=["x=1"])
    for o in objs:
        print(o.kind, o.name, o.source)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tools import charts as chart_files
from tools import manifest
from tools.manifest import KubeObject

REPO_ROOT = chart_files.REPO_ROOT
CHARTS_DIR = chart_files.CHARTS_DIR
VALUES_DIR = chart_files.VALUES_DIR


class HelmError(Exception):
    """helm failed or could not be found. ``str()`` is a message fit for a user (one line or helm's own text)."""


# The one object type of tools/ (tools.manifest); the old name stays for the tests that spell it.
RenderedObject = KubeObject


def find_helm(major: int = 4) -> str:
    """Path of the helm binary: ``HELM`` (or ``HELM3`` for major 3) env, then .venv/bin, then PATH."""
    env_name, venv_name = ("HELM", "helm") if major == 4 else ("HELM3", "helm3")
    candidates = [os.environ.get(env_name), str(REPO_ROOT / ".venv" / "bin" / venv_name)]
    for cand in candidates:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    on_path = shutil.which(venv_name) or (shutil.which("helm") if major == 4 else None)
    if on_path:
        return on_path
    raise HelmError(
        f"helm {major} not found: set {env_name}, or run `make setup` to install it as .venv/bin/{venv_name}"
    )


def run(args: Sequence[str], *, helm: str | None = None, context: str = "", cwd: Path | None = None) -> str:
    """Run helm with ``args`` and return stdout; on failure raise HelmError with helm's stderr verbatim."""
    binary = helm or find_helm()
    try:
        proc = subprocess.run(
            [binary, *args], capture_output=True, text=True, cwd=cwd, check=False,
            env={**os.environ, "HELM_DIFF_IGNORE_UNKNOWN_FLAGS": "true"},
        )
    except OSError as exc:
        raise HelmError(f"cannot run {binary}: {exc}") from exc
    if proc.returncode != 0:
        where = f" ({context})" if context else ""
        # helm lint reports its findings on stdout as [ERROR]/[WARNING] lines: keep those too.
        findings = [ln for ln in proc.stdout.splitlines() if ln.lstrip().startswith(("[ERROR]", "[WARNING]"))]
        detail = "\n".join([*findings, proc.stderr.strip()]).strip()
        raise HelmError(f"helm {' '.join(args[:1])} failed{where}:\n{detail}")
    return proc.stdout


def _local_dependencies(chart: Path) -> list[Path]:
    """Directories of the chart's file:// dependencies (tools.charts reads Chart.yaml)."""
    try:
        deps = chart_files.read(chart).dependencies
    except chart_files.ChartFileError as exc:
        raise HelmError(str(exc)) from None
    return [d.path for d in deps if d.path is not None and d.repository.startswith("file://")]


def stale_lock_entries(chart: Path) -> list[str]:
    """Local (file://) dependencies whose version in Chart.lock differs from their Chart.yaml."""
    lock = chart / "Chart.lock"
    if not lock.is_file():
        return []
    locked = {d.get("name"): d for d in (yaml.safe_load(lock.read_text()) or {}).get("dependencies") or []}
    stale = []
    for dep in _local_dependencies(chart):
        meta = yaml.safe_load((dep / "Chart.yaml").read_text()) or {}
        entry = locked.get(meta.get("name"))
        if entry is None:
            stale.append(f"{meta.get('name')} is not locked")
        elif str(entry.get("version")) != str(meta.get("version")):
            stale.append(f"{meta.get('name')} locked at {entry.get('version')}, chart is {meta.get('version')}")
    return stale


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        if "charts" in p.relative_to(path).parts[:1] and p.suffix == ".tgz":
            continue
        newest = max(newest, p.stat().st_mtime)
    return newest


def dependency_build(chart: Path | str, *, helm: str | None = None) -> None:
    """``helm dependency build`` when a file:// dependency changed since the last build (or never built)."""
    chart = Path(chart).resolve()
    deps = _local_dependencies(chart)
    if not deps:
        return
    for dep in deps:
        dependency_build(dep, helm=helm)
    lock = chart / "Chart.lock"
    stale = stale_lock_entries(chart)
    if stale:
        raise HelmError(
            f"{lock} is out of date ({'; '.join(stale)}): run `helm dependency update {chart}` and commit "
            "the new Chart.lock"
        )
    built = list((chart / "charts").glob("*.tgz")) if (chart / "charts").is_dir() else []
    if built and lock.exists() and len(built) >= len(deps):
        oldest_build = min(p.stat().st_mtime for p in built)
        newest_src = max([_newest_mtime(d) for d in deps] + [(chart / "Chart.yaml").stat().st_mtime])
        if oldest_build >= newest_src:
            return
    run(["dependency", "build", str(chart), "--skip-refresh"], helm=helm, context=f"chart {chart}")


def parse_manifests(text: str, name: str = "helm template output", namespace: str = "default") -> list[KubeObject]:
    """Objects of a multi-document manifest with their ``# Source:`` template (see tools.manifest)."""
    try:
        return manifest.parse(text, name, namespace)
    except manifest.ManifestError as exc:
        raise HelmError(str(exc)) from None


def template_args(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    *,
    release: str = "nova",
    namespace: str = "default",
    kube_version: str | None = None,
    api_versions: Sequence[str] = (),
    show_only: Sequence[str] = (),
) -> list[str]:
    """The argv (after the helm binary) of ``helm template`` for these inputs."""
    args = ["template", release, str(chart), "--namespace", namespace]
    for v in values:
        args += ["-f", str(v)]
    for s in set_values:
        args += ["--set", s]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    for s in show_only:
        args += ["--show-only", s]
    return args


def render_text(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    *,
    helm: str | None = None,
    build_dependencies: bool = True,
    **kwargs: Any,
) -> str:
    """``helm template`` output as text. Raises HelmError naming the chart and values files."""
    chart = Path(chart)
    if not (chart / "Chart.yaml").is_file():
        raise HelmError(f"{chart}: not a chart (no Chart.yaml)")
    for v in values:
        if not Path(v).is_file():
            raise HelmError(f"values file {v} does not exist")
    context = f"chart {chart}" + (f", values {', '.join(map(str, values))}" if values else "")
    if build_dependencies:
        dependency_build(chart, helm=helm)
    return run(template_args(chart, values, set_values, **kwargs), helm=helm, context=context)


def render(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    **kwargs: Any,
) -> list[RenderedObject]:
    """Render a chart with helm and return its objects (see :func:`render_text` for arguments); objects
    without a namespace land in the render namespace (``effective_namespace``)."""
    text = render_text(chart, values, set_values, **kwargs)
    return parse_manifests(text, f"helm template {chart}", kwargs.get("namespace", "default"))


def charts() -> list[Path]:
    """Every chart under charts/ that renders on its own (library charts left out). Kept for the tests
    that call it; new code uses tools.charts.discover()."""
    return chart_files.discover()


def profiles(chart: Path) -> list[Path]:
    """The values profiles of a chart. Kept for the tests that call it; new code uses tools.charts.profiles()."""
    return chart_files.profiles(chart)


def version(helm: str | None = None) -> str:
    return run(["version", "--short"], helm=helm).strip()
