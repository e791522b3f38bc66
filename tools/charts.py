"""The charts of this repository: where they are, what they depend on, and which values profiles apply.

One rule for every tool (tools.lint, tools.ctlint, tools.schema, tools.helm, tests):

- A **chart** is a directory directly under ``charts/`` with a ``Chart.yaml``. A ``type: library``
  chart is a chart but is never rendered or installed on its own (:func:`discover` leaves it out
  unless asked).
- A **dependency** is a ``dependencies:`` entry of Chart.yaml. It is *local* when its repository is
  ``file://<dir>`` or when ``charts/<name>/`` holds the chart (unpacked or symlinked); its key in the
  parent's values is the alias, else the name.
- A **profile** is a values file a chart is meant to be rendered with:

  - ``<chart>/ci/*-values.yaml``: the scenarios chart-testing lints and installs on Kind (ct's own
    rule: only names ending in ``-values.yaml``);
  - ``<chart>/ci/render/*-values.yaml``: render-only scenarios (they need Secrets or hosts created
    outside the chart): rendered, linted and tested, never installed by ct;
  - ``values/*.yaml``: the profiles a user passes with ``-f``, for every top-level chart (one that no
    other chart under charts/ depends on: the umbrella). A user profile that needs values only a site can
    give (values/production.yaml: the backup repositories) has an **example site overlay**
    ``values/examples/<profile>-site.yaml``; the profile is rendered with it, after it, everywhere
    (:func:`profile_values`), as a user installs it (``-f values/production.yaml -f <your copy>``).

  A ``.yaml`` under ``ci/`` or ``ci/render/`` that does not end in ``-values.yaml`` belongs to no
  rule: :func:`stray_ci_files` lists them so a test can refuse them instead of silently skipping one.

Usage::

    from tools import charts
    for chart in charts.discover():
        for profile in charts.profiles(chart):
            helm.render(chart, charts.profile_values(profile))
    helm.render(charts.CHARTS_DIR / "nova", charts.profile_values("production"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = REPO_ROOT / "charts"
VALUES_DIR = REPO_ROOT / "values"
CI_DIR = "ci"
RENDER_ONLY_DIR = "render"
PROFILE_GLOB = "*-values.yaml"
EXAMPLES_DIR = "examples"
SITE_OVERLAY_SUFFIX = "-site.yaml"

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class ChartFileError(ValueError):
    """Chart.yaml is missing, unreadable or wrong: ``str()`` is one line naming the file (and line);
    ``file``, ``line`` and ``problem`` are the parts (for tools that collect problems, like tools.schema)."""

    def __init__(self, file: Path, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        super().__init__(f"{file}" + (f":{line}" if line else "") + f": {problem}")


@dataclass(frozen=True)
class Dependency:
    name: str
    key: str  # the alias if any, else the name: the dependency's key in the parent's values
    version: str
    repository: str
    condition: str | None
    path: Path | None  # the dependency chart's directory when it is local
    line: int | None  # where the entry starts in Chart.yaml


@dataclass(frozen=True)
class ChartMeta:
    path: Path
    name: str
    version: str
    type: str  # "application" or "library"
    description: str
    dependencies: tuple[Dependency, ...]

    @property
    def is_library(self) -> bool:
        return self.type == "library"

    @property
    def local_dependencies(self) -> tuple[Dependency, ...]:
        return tuple(d for d in self.dependencies if d.path is not None)


def is_chart(path: Path) -> bool:
    return (path / "Chart.yaml").is_file()


def _load_with_lines(file: Path) -> tuple[Any, list[int]]:
    """Chart.yaml's data and the line of each ``dependencies`` entry (libyaml when available)."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChartFileError(file, None, "not a chart (no Chart.yaml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChartFileError(file, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ChartFileError(file, line, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    lines: list[int] = []
    if isinstance(data, dict) and data.get("dependencies"):
        node = yaml.compose(text, Loader=_Loader)
        for key, value in getattr(node, "value", []):
            if getattr(key, "value", None) == "dependencies" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return data, lines


def read(path: Path | str) -> ChartMeta:
    """A chart's Chart.yaml; ChartFileError naming the file and line when it is unusable."""
    path = Path(path)
    file = path / "Chart.yaml"
    meta, lines = _load_with_lines(file)
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ChartFileError(file, 1, "Chart.yaml needs a mapping with a `name`")
    entries = meta.get("dependencies") or []
    if not isinstance(entries, list):
        raise ChartFileError(file, None, "dependencies must be a list")
    deps = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        deps.append(_dependency(path, entry, i, line))
    return ChartMeta(path, str(meta["name"]), str(meta.get("version") or ""), str(meta.get("type") or "application"),
                     str(meta.get("description") or ""), tuple(deps))


def _dependency(chart: Path, entry: Any, i: int, line: int | None) -> Dependency:
    file = chart / "Chart.yaml"
    if not isinstance(entry, dict) or not entry.get("name"):
        raise ChartFileError(file, line, f"dependencies[{i}] needs a `name`")
    name = str(entry["name"])
    repo = str(entry.get("repository") or "")
    local: Path | None = None
    if repo.startswith("file://"):
        local = (chart / repo[len("file://"):]).resolve()
        if not is_chart(local):
            raise ChartFileError(file, line, f"dependency {name!r} points at {repo}, which is not a chart "
                                             f"(no {local / 'Chart.yaml'})")
    elif is_chart(chart / "charts" / name):
        local = chart / "charts" / name
    return Dependency(name, str(entry.get("alias") or name), str(entry.get("version") or ""), repo,
                      str(entry["condition"]) if entry.get("condition") else None, local, line)


def discover(root: Path = CHARTS_DIR, *, include_library: bool = False) -> list[Path]:
    """Every chart directly under ``root``, sorted; library charts only with ``include_library``."""
    found = sorted(p.parent for p in root.glob("*/Chart.yaml"))
    if include_library:
        return found
    return [c for c in found if not _is_library(c)]


def _is_library(chart: Path) -> bool:
    try:
        return read(chart).is_library
    except ChartFileError:
        return False  # not ours to judge here: rendering it reports the problem


def local_dependencies(chart: Path | str) -> list[Path]:
    """Directories of a chart's local dependencies, in Chart.yaml order."""
    return [d.path for d in read(chart).local_dependencies if d.path is not None]


def dependency_dirs(chart: Path | str) -> dict[str, Path]:
    """Values key (alias or name) -> directory of every local dependency, recursively (for ``# Source:``
    paths such as ``nova/charts/nova-redis/templates/...``); unreadable charts contribute nothing."""
    out: dict[str, Path] = {}
    try:
        deps = read(chart).local_dependencies
    except ChartFileError:
        return out
    for dep in deps:
        if dep.path is not None:
            out[dep.key] = dep.path
            out.update(dependency_dirs(dep.path))
    return out


def top_level(root: Path = CHARTS_DIR) -> list[Path]:
    """Charts under ``root`` that no other chart there depends on (the umbrella)."""
    all_charts = discover(root)
    used: set[Path] = set()
    for chart in all_charts:
        try:
            used.update(p.resolve() for p in local_dependencies(chart))
        except ChartFileError:
            continue
    return [c for c in all_charts if c.resolve() not in used]


def install_profiles(chart: Path) -> list[Path]:
    """``ci/*-values.yaml``: the scenarios chart-testing lints and installs."""
    return sorted((chart / CI_DIR).glob(PROFILE_GLOB))


def render_profiles(chart: Path) -> list[Path]:
    """``ci/render/*-values.yaml``: rendered, linted and tested, never installed by ct."""
    return sorted((chart / CI_DIR / RENDER_ONLY_DIR).glob(PROFILE_GLOB))


def user_profiles(chart: Path, root: Path = CHARTS_DIR, values_dir: Path = VALUES_DIR) -> list[Path]:
    """``values/*.yaml`` for a top-level chart of ``root``; nothing for a chart another one depends on."""
    if chart.resolve() not in {c.resolve() for c in top_level(root)}:
        return []
    return sorted(values_dir.glob("*.yaml"))


def profiles(chart: Path, root: Path = CHARTS_DIR, values_dir: Path = VALUES_DIR) -> list[Path]:
    """Every profile of a chart: user profiles, then ct's install scenarios, then the render-only ones."""
    return [*user_profiles(chart, root, values_dir), *install_profiles(chart), *render_profiles(chart)]


def site_overlay(profile: Path | str, values_dir: Path = VALUES_DIR) -> Path | None:
    """The example site overlay of a user profile, ``<values_dir>/examples/<name>-site.yaml`` for
    ``<values_dir>/<name>.yaml``, when it exists; None for any other file."""
    profile = Path(profile)
    if profile.resolve().parent != values_dir.resolve():
        return None
    overlay = values_dir / EXAMPLES_DIR / f"{profile.stem}{SITE_OVERLAY_SUFFIX}"
    return overlay if overlay.is_file() else None


def profile_values(profile: Path | str, values_dir: Path = VALUES_DIR) -> list[Path]:
    """The values files a profile is rendered with, in ``-f`` order: the profile, then its example site overlay
    (:func:`site_overlay`) if it has one. This is the one place that pairs them: tools.lint, the tests and the
    benchmarks render a profile through it. ``profile`` is a path, or a user profile's name (``"production"``
    for ``values/production.yaml``)."""
    path = Path(profile)
    if isinstance(profile, str) and path.name == profile and not profile.endswith((".yaml", ".yml")):
        path = values_dir / f"{profile}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such values profile")
    overlay = site_overlay(path, values_dir)
    return [path] if overlay is None else [path, overlay]


def stray_site_overlays(values_dir: Path = VALUES_DIR) -> list[Path]:
    """Files under ``<values_dir>/examples/`` that are the site overlay of no user profile (misnamed, or their
    profile is gone): rendered by nothing, so a test refuses them."""
    examples = values_dir / EXAMPLES_DIR
    return [p for p in sorted(examples.glob("*")) if not (p.name.endswith(SITE_OVERLAY_SUFFIX)
            and (values_dir / f"{p.name[:-len(SITE_OVERLAY_SUFFIX)]}.yaml").is_file())]


def merged_values(files: Sequence[Path | str]) -> dict[str, Any]:
    """The values of several files merged as ``helm -f a -f b`` merges them: maps key by key, any other value
    (lists included) replaced by the later file's, a null deleting the key."""
    out: dict[str, Any] = {}
    for file in files:
        data = yaml.load(Path(file).read_text(encoding="utf-8"), Loader=_Loader) or {}
        if not isinstance(data, dict):
            raise TypeError(f"{file}: values must be a mapping")
        out = _merge(out, data)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def stray_ci_files(chart: Path) -> list[Path]:
    """YAML files under ci/ or ci/render/ that no profile rule picks up (ct would skip them silently)."""
    out = []
    for directory in (chart / CI_DIR, chart / CI_DIR / RENDER_ONLY_DIR):
        out += [p for p in sorted(directory.glob("*.y*ml")) if not p.match(PROFILE_GLOB)]
    return out
