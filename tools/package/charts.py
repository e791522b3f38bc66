"""The charts under charts/*/Chart.yaml and whether each carries its dependencies as they are now.

A local (``file://``) dependency is vendored as a relative symlink ``<chart>/charts/<name> -> <target>``:
``helm package`` then bundles the dependency's current files with no ``helm dependency build``. Library
charts are only ever dependencies: they are bundled inside the charts that use them, never packaged alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ChartError(Exception):
    """A Chart.yaml that cannot be read. ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class Dependency:
    name: str
    repository: str

    @property
    def local(self) -> bool:
        return self.repository.startswith("file://")


@dataclass(frozen=True)
class Chart:
    path: Path
    name: str
    version: str
    type: str
    dependencies: tuple[Dependency, ...]
    meta: dict[str, Any]

    @property
    def library(self) -> bool:
        return self.type == "library"

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.tgz"


def show(path: Path) -> str:
    """A path as a user would type it: relative to the working directory when below it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except ValueError:
        return str(path)


def load(path: Path) -> Chart:
    """Read ``<path>/Chart.yaml``; raises ChartError naming the file."""
    chart_yaml = path / "Chart.yaml"
    try:
        meta = yaml.safe_load(chart_yaml.read_text())
    except OSError as exc:
        raise ChartError(f"{show(path)}: not a chart ({show(chart_yaml)}: {exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ChartError(f"{show(chart_yaml)}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise ChartError(f"{show(chart_yaml)}: needs `name` and `version`")
    deps = tuple(
        Dependency(str(d.get("name", "")), str(d.get("repository", "")))
        for d in meta.get("dependencies") or [] if isinstance(d, dict)
    )
    return Chart(path, str(meta["name"]), str(meta["version"]), str(meta.get("type") or "application"), deps, meta)


def discover(charts_dir: Path) -> list[Chart]:
    """Every chart ``<charts_dir>/*/Chart.yaml``, by directory name."""
    return [load(p.parent) for p in sorted(charts_dir.glob("*/Chart.yaml"))]


def stray_archives(directory: str, names: list[str]) -> set[str]:
    """For ``shutil.copytree(ignore=...)``: in a ``charts/`` directory, the ``<name>-<version>.tgz`` that
    ``helm dependency build`` leaves next to a vendored ``<name>`` directory (the directory is the current one)."""
    if Path(directory).name != "charts":
        return set()
    dirs = {n for n in names if (Path(directory) / n).is_dir()}
    return {n for n in names if n.endswith(".tgz") and n.rsplit("-", 1)[0] in dirs}


def _relative_link(chart: Path, target: Path) -> str:
    return os.path.relpath(target, chart / "charts")


def dependency_findings(chart: Chart, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """Why ``helm package`` of this chart would not bundle its dependencies as they are in the tree:
    one line each, naming the chart, the dependency and the fix. Checks vendored dependencies in turn."""
    here = show(chart.path)
    findings: list[str] = []
    vendor = chart.path / "charts"
    for dep in chart.dependencies:
        slot = vendor / dep.name
        if not dep.local:
            if not slot.is_dir() and not (vendor.is_dir() and list(vendor.glob(f"{dep.name}-[0-9]*.tgz"))):
                findings.append(f"{here}: dependency {dep.name} ({dep.repository}) is not downloaded: run "
                                f"`helm dependency build {here}`")
            continue
        target = (chart.path / dep.repository[len("file://"):]).resolve()
        link = _relative_link(chart.path, target)
        if not (target / "Chart.yaml").is_file():
            findings.append(f"{here}: dependency {dep.name} points at {dep.repository}, which is not a chart")
            continue
        if not slot.is_dir():
            what = "is a broken link" if slot.is_symlink() else "is missing"
            findings.append(f"{here}: dependency {dep.name} ({dep.repository}) {what} in {show(vendor)}/: run "
                            f"`ln -sfn {link} {show(slot)}`")
            continue
        if slot.resolve() != target:
            findings.append(f"{here}: {show(slot)} is not {dep.repository} (it resolves to {show(slot.resolve())}): "
                            f"replace it with `ln -sfn {link} {show(slot)}`")
            continue
        if target not in _seen:
            try:
                findings += dependency_findings(load(target), _seen | {chart.path.resolve()})
            except ChartError as exc:
                findings.append(str(exc))
    return findings
