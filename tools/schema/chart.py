"""A chart on disk: Chart.yaml metadata and its local (file://) dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools import charts
from tools.schema.errors import ChartError, Problem


@dataclass(frozen=True)
class Dependency:
    name: str
    key: str  # the alias if any, else the name: the dependency's key in the parent's values
    path: Path | None  # the dependency chart's directory when it is local
    condition: str | None
    repository: str


@dataclass(frozen=True)
class Chart:
    path: Path
    name: str
    description: str
    dependencies: tuple[Dependency, ...]

    @property
    def values_file(self) -> Path:
        return self.path / "values.yaml"

    @property
    def schema_file(self) -> Path:
        return self.path / "values.schema.json"

    @property
    def readme_file(self) -> Path:
        return self.path / "README.md"

    @property
    def templates(self) -> Path:
        return self.path / "templates"


def is_chart(path: Path) -> bool:
    return (path / "Chart.yaml").is_file()


def discover(root: Path) -> list[Path]:
    """Every chart directly under ``root`` (a directory with Chart.yaml), sorted (tools.charts' rule)."""
    return charts.discover(root, include_library=True)


def read(path: Path) -> Chart:
    """Read Chart.yaml; raise ChartError (with file and line) when it is unusable."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    file = path / "Chart.yaml"
    try:
        meta = YAML(typ="rt").load(file.read_text(encoding="utf-8")) or {}
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ChartError([Problem(file, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}")]) from None
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise ChartError([Problem(file, None, f"cannot read: {exc}")]) from None
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ChartError([Problem(file, 1, "Chart.yaml needs a mapping with a `name`")])
    deps: list[Dependency] = []
    problems: list[Problem] = []
    for i, dep in enumerate(meta.get("dependencies") or []):
        line = _line(meta.get("dependencies"), i)
        if not isinstance(dep, dict) or not dep.get("name"):
            problems.append(Problem(file, line, f"dependencies[{i}] needs a `name`"))
            continue
        repo = str(dep.get("repository") or "")
        local: Path | None = None
        if repo.startswith("file://"):
            local = (path / repo[len("file://"):]).resolve()
            if not is_chart(local):
                problems.append(Problem(file, line, f"dependency {dep['name']}: {repo} is not a chart "
                                                    f"(no Chart.yaml in {local})"))
                continue
        elif (path / "charts" / str(dep["name"]) / "Chart.yaml").is_file():
            local = path / "charts" / str(dep["name"])
        deps.append(Dependency(str(dep["name"]), str(dep.get("alias") or dep["name"]), local,
                               str(dep["condition"]) if dep.get("condition") else None, repo))
    if problems:
        raise ChartError(problems)
    return Chart(path, str(meta["name"]), str(meta.get("description") or ""), tuple(deps))


def _line(seq: object, i: int) -> int | None:
    try:
        return int(seq.lc.item(i)[0]) + 1  # type: ignore[attr-defined]
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
