"""Build charts in dependency order (a parent embeds each local dependency's schema) and render outputs."""

from __future__ import annotations

from pathlib import Path

from tools.schema import build as build_mod
from tools.schema import chart as chart_mod
from tools.schema import readme
from tools.schema.errors import ChartError, Problem


class Session:
    """Generates each chart once per run, dependencies first; failures are kept and re-raised to parents."""

    def __init__(self, kube_version: str | None = None):
        self.kube_version = kube_version
        self._done: dict[Path, build_mod.Built | ChartError] = {}
        self._active: list[Path] = []

    def built(self, path: Path) -> build_mod.Built:
        key = path.resolve()
        if key in self._done:
            result = self._done[key]
            if isinstance(result, ChartError):
                raise result
            return result
        if key in self._active:
            cycle = " -> ".join(p.name for p in [*self._active, key])
            raise ChartError([Problem(key / "Chart.yaml", None, f"dependency cycle: {cycle}")])
        self._active.append(key)
        try:
            result = self._build(path)
        except ChartError as exc:
            self._done[key] = exc
            raise
        finally:
            self._active.pop()
        self._done[key] = result
        return result

    def _build(self, path: Path) -> build_mod.Built:
        chart = chart_mod.read(path)
        subcharts: dict[str, build_mod.Built] = {}
        failed: list[Problem] = []
        for dep in chart.dependencies:
            if dep.path is None:
                continue
            try:
                subcharts[dep.key] = self.built(dep.path)
            except ChartError as exc:
                failed += [*exc.problems, Problem(path / "Chart.yaml", None, f"dependency {dep.name} "
                                                  f"({dep.path.name}) has errors, reported above")]
        if not failed:
            return build_mod.build(chart, subcharts, self.kube_version)
        try:  # still report the parent's own problems, with the failed dependencies taken as any object
            build_mod.build(chart, subcharts, self.kube_version)
        except ChartError as exc:
            failed += exc.problems
        raise ChartError(failed)

    def outputs(self, path: Path) -> list[tuple[Path, str]]:
        """(file, expected content) for the chart's schema and README."""
        built = self.built(path)
        chart = built.chart
        return [(chart.schema_file, built.text()),
                (chart.readme_file, readme.render(built, readme.read(chart.readme_file)))]
