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
    from tools.schema import yamlread

    file = path / "Chart.yaml"
    try:
        root = yamlread.compose(file.read_text(encoding="utf-8"))
    except yamlread.YAMLError as exc:
        raise ChartError([Problem(file, yamlread.error_line(exc),
                                  f"invalid YAML: {yamlread.error_text(exc)}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChartError([Problem(file, None, f"cannot read: {exc}")]) from None
    meta = yamlread.plain(root) or {}
    lines = _dependency_lines(root)
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ChartError([Problem(file, 1, "Chart.yaml needs a mapping with a `name`")])
    deps: list[Dependency] = []
    problems: list[Problem] = []
    for i, dep in enumerate(meta.get("dependencies") or []):
        line = lines[i] if i < len(lines) else None
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


def _dependency_lines(root: object) -> list[int]:
    """1-based line of each item of Chart.yaml's `dependencies` list."""
    from tools.schema import yamlread

    if not isinstance(root, yamlread.MappingNode):
        return []
    for key, value in yamlread.pairs(root):
        if isinstance(key, yamlread.ScalarNode) and key.value == "dependencies" \
                and isinstance(value, yamlread.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []
