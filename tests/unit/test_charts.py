"""tools.charts: the one rule for charts, local dependencies and values profiles, used by every tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import charts
from tools.ctlint import checks as ct_checks
from tools.lint import cli as lint_cli

REPO = charts.REPO_ROOT


def _chart(root: Path, name: str, extra: str = "") -> Path:
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n{extra}")
    return chart


def test_the_umbrella_gets_the_user_profiles_then_ct_scenarios_then_render_only_ones() -> None:
    nova = charts.CHARTS_DIR / "nova"
    assert charts.profiles(nova) == [
        *sorted((REPO / "values").glob("*.yaml")),
        *sorted((nova / "ci").glob("*-values.yaml")),
        *sorted((nova / "ci" / "render").glob("*-values.yaml")),
    ]
    assert REPO / "values" / "production.yaml" in charts.profiles(nova)
    assert nova / "ci" / "render" / "external-values.yaml" in charts.profiles(nova)


def test_a_subchart_gets_only_its_own_ci_profiles() -> None:
    redis = charts.CHARTS_DIR / "nova-redis"
    assert charts.profiles(redis) == charts.install_profiles(redis) + charts.render_profiles(redis)
    assert charts.install_profiles(redis) == sorted((redis / "ci").glob("*-values.yaml"))
    assert charts.top_level() == [charts.CHARTS_DIR / "nova"]


def test_no_yaml_under_ci_escapes_the_profile_rule() -> None:
    for chart in charts.discover(include_library=True):
        assert charts.stray_ci_files(chart) == [], f"rename to *-values.yaml so ct and the tools pick it up: {chart}"


def test_a_ci_file_not_named_values_is_stray_not_a_profile(tmp_path: Path) -> None:
    chart = _chart(tmp_path, "app")
    (chart / "ci" / "render").mkdir(parents=True)
    for name in ("ci/a-values.yaml", "ci/notes.yaml", "ci/render/b-values.yaml", "ci/render/c.yml"):
        (chart / name).write_text("{}\n")
    assert charts.profiles(chart, tmp_path, tmp_path / "none") == [chart / "ci/a-values.yaml",
                                                                    chart / "ci/render/b-values.yaml"]
    assert charts.stray_ci_files(chart) == [chart / "ci/notes.yaml", chart / "ci/render/c.yml"]


def test_library_charts_are_charts_but_never_rendered_on_their_own(tmp_path: Path) -> None:
    _chart(tmp_path, "lib", "type: library\n")
    app = _chart(tmp_path, "app", "dependencies:\n- name: lib\n  version: 0.1.0\n  repository: file://../lib\n")
    assert charts.discover(tmp_path) == [app]
    assert charts.discover(tmp_path, include_library=True) == [app, tmp_path / "lib"]
    assert charts.top_level(tmp_path) == [app]


def test_local_dependencies_by_file_url_or_under_charts_with_aliases_recursively(tmp_path: Path) -> None:
    _chart(tmp_path, "leaf")
    _chart(tmp_path, "mid", "dependencies:\n- name: leaf\n  version: 0.1.0\n  repository: file://../leaf\n")
    top = _chart(tmp_path, "top", "dependencies:\n- name: mid\n  alias: middle\n  version: 0.1.0\n"
                                  "  repository: file://../mid\n  condition: middle.enabled\n"
                                  "- name: vendored\n  version: 1.0.0\n- name: remote\n  version: 2.0.0\n"
                                  "  repository: https://charts.example.com\n")
    _chart(top / "charts", "vendored")
    meta = charts.read(top)
    assert [(d.name, d.key, d.condition, d.line) for d in meta.dependencies] == [
        ("mid", "middle", "middle.enabled", 5), ("vendored", "vendored", None, 10), ("remote", "remote", None, 12)]
    assert charts.local_dependencies(top) == [(tmp_path / "mid").resolve(), top / "charts" / "vendored"]
    assert charts.dependency_dirs(top) == {"middle": (tmp_path / "mid").resolve(),
                                           "leaf": (tmp_path / "leaf").resolve(),
                                           "vendored": top / "charts" / "vendored"}


def test_a_file_dependency_that_is_not_a_chart_names_chart_yaml_and_its_line(tmp_path: Path) -> None:
    top = _chart(tmp_path, "top", "dependencies:\n- name: ghost\n  version: 0.1.0\n  repository: file://../ghost\n")
    with pytest.raises(charts.ChartFileError, match=r"top/Chart.yaml:5: dependency 'ghost' points at "
                                                    r"file://../ghost, which is not a chart"):
        charts.read(top)


def test_broken_chart_yaml_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    chart = tmp_path / "bad"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: [bad\n")
    with pytest.raises(charts.ChartFileError, match=r"bad/Chart.yaml:3: invalid YAML"):
        charts.read(chart)
    with pytest.raises(charts.ChartFileError, match=r"not a chart \(no Chart.yaml\)"):
        charts.read(tmp_path)


def test_every_tool_takes_charts_and_profiles_from_the_one_rule() -> None:
    for chart in charts.discover():
        assert ct_checks.ci_values_files(chart) == charts.install_profiles(chart)
    args = lint_cli.build_parser().parse_args([])
    linted = [(chart, values) for chart, values, _ in lint_cli._renders(args)]
    assert linted == [(c, v) for c in charts.discover()
                      for v in ([], *([str(f) for f in charts.profile_values(p)] for p in charts.profiles(c)))]
