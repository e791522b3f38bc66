"""tools.package (`make package`): the archives carry the current subcharts and Artifact Hub metadata that
matches the charts; library charts are bundled, never packaged; broken layouts are named with the fix.
Also the release workflow: it runs only make targets and tools that exist."""

from __future__ import annotations

import re
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import helm
from tools.manifest import KubeObject
from tools.package import changelog
from tools.package.charts import discover
from tools.package.cli import main

ROOT = helm.REPO_ROOT
APP_CHARTS = [c for c in discover(helm.CHARTS_DIR) if not c.library]
RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yaml"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    assert main(["--out", str(out)]) == 0
    return out


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: f.read() for m in tar.getmembers() if m.isfile() and (f := tar.extractfile(m))}


def _tree(chart: Path) -> dict[str, bytes]:
    """A chart's files as helm bundles them, following symlinked dependencies, without ignored files."""
    return {str(p.relative_to(chart)): p.read_bytes() for p in sorted(chart.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}


def _images(objs: list[KubeObject]) -> set[str]:
    found: set[str] = set()
    for o in objs:
        spec: Any = o.get("spec") or {}
        pod = spec.get("template", {}).get("spec") if o.kind != "Pod" else spec
        if o.kind == "CronJob":
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        for c in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
            found.add(c["image"])
    return found


def test_every_application_chart_is_packaged_with_its_version(dist: Path) -> None:
    assert sorted(p.name for p in dist.glob("*.tgz")) == sorted(c.archive for c in APP_CHARTS)
    for chart in APP_CHARTS:
        meta = yaml.safe_load(_members(dist / chart.archive)[f"{chart.name}/Chart.yaml"])
        assert (meta["name"], meta["version"]) == (chart.name, chart.version)


@pytest.mark.parametrize("chart", [c for c in APP_CHARTS if c.dependencies], ids=lambda c: c.name)
def test_packaged_chart_carries_the_current_dependencies(dist: Path, chart: Any) -> None:
    members = _members(dist / chart.archive)
    for dep in chart.dependencies:
        source = (chart.path / dep.repository[len("file://"):]).resolve()
        prefix = f"{chart.name}/charts/{dep.name}/"
        bundled = {k[len(prefix):]: v for k, v in members.items() if k.startswith(prefix)}
        assert yaml.safe_load(bundled["Chart.yaml"])["version"] == yaml.safe_load(
            (source / "Chart.yaml").read_text())["version"]
        current = {k: v for k, v in _tree(source).items() if k.startswith("templates/")}
        assert current, f"{source} has no templates"
        assert {k: v for k, v in bundled.items() if k.startswith("templates/")} == current, (
            f"{chart.archive} bundles a {dep.name} whose templates differ from {source}")


@pytest.mark.parametrize("chart", APP_CHARTS, ids=lambda c: c.name)
def test_packaged_chart_yaml_has_the_changelog_entries_as_artifact_hub_changes(dist: Path, chart: Any) -> None:
    meta = yaml.safe_load(_members(dist / chart.archive)[f"{chart.name}/Chart.yaml"])
    changes = yaml.safe_load(meta["annotations"]["artifacthub.io/changes"])
    expected = changelog.changes_for((ROOT / "CHANGELOG.md").read_text(), chart.name, chart.version)
    assert changes == expected and changes, f"{chart.name} {chart.version}: changes {changes!r}"
    # everything else of the working tree's Chart.yaml is kept as it is
    assert {k: v for k, v in meta["annotations"].items() if k != "artifacthub.io/changes"} == chart.meta["annotations"]


@pytest.mark.parametrize("chart", APP_CHARTS, ids=lambda c: c.name)
def test_artifact_hub_images_are_the_images_the_default_values_render(chart: Any) -> None:
    listed = yaml.safe_load(chart.meta["annotations"]["artifacthub.io/images"])
    rendered = _images(helm.render(chart.path, build_dependencies=False))
    assert rendered, f"{chart.name}: the default render has no pod"
    assert sorted(i["image"] for i in listed) == sorted(rendered), (
        f"{chart.path}/Chart.yaml artifacthub.io/images must list exactly the rendered images")
    assert all(i["name"] for i in listed)


@pytest.mark.parametrize("chart", APP_CHARTS, ids=lambda c: c.name)
def test_artifact_hub_license_and_links_point_at_files_of_this_repository(chart: Any) -> None:
    ann = chart.meta["annotations"]
    assert re.fullmatch(r"[A-Za-z0-9.+-]+", ann["artifacthub.io/license"])
    links = yaml.safe_load(ann["artifacthub.io/links"])
    assert any(link["name"] == "Source" for link in links)
    for link in links:
        m = re.fullmatch(r"https://github\.com/nova/charts/(?:tree|blob)/main/(.+)", link["url"])
        assert m and (ROOT / m[1]).exists(), f"{chart.name}: link {link['url']} is not a path of this repository"


# --- fixture charts: layouts tools.package accepts and refuses ----------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree_with_library(tmp_path: Path, link: bool = True) -> Path:
    charts = tmp_path / "charts"
    _write(charts / "lib" / "Chart.yaml", "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n")
    _write(charts / "lib" / "templates" / "_names.tpl", '{{- define "lib.name" -}}from-lib-{{ .Release.Name }}{{- end -}}\n')
    _write(charts / "app" / "Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.2.3\ndependencies:\n"
           "  - name: lib\n    version: 0.1.0\n    repository: file://../lib\n")
    _write(charts / "app" / "templates" / "cm.yaml",
           'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include "lib.name" . }}\n')
    if link:
        (charts / "app" / "charts").mkdir()
        (charts / "app" / "charts" / "lib").symlink_to("../../lib")
    _write(tmp_path / "CHANGELOG.md", "# Changelog\n\n## Unreleased\n- app 1.2.3: first (with a; b); second.\n"
           "- lib 0.1.0: helpers\n- tools: not a chart\n")
    return charts


def _run(charts: Path, *extra: str) -> int:
    return main(["--charts-dir", str(charts), "--changelog", str(charts.parent / "CHANGELOG.md"),
                 "--out", str(charts.parent / "dist"), *extra])


def test_library_chart_is_bundled_into_the_chart_that_uses_it_and_not_packaged_alone(tmp_path: Path) -> None:
    charts = _tree_with_library(tmp_path)
    assert _run(charts) == 0
    assert [p.name for p in (tmp_path / "dist").iterdir()] == ["app-1.2.3.tgz"]
    archive = tmp_path / "dist" / "app-1.2.3.tgz"
    assert "app/charts/lib/templates/_names.tpl" in _members(archive)
    objs = helm.parse_manifests(helm.run(["template", "r", str(archive)]))
    assert [o.name for o in objs] == ["from-lib-r"]
    meta = yaml.safe_load(_members(archive)["app/Chart.yaml"])
    assert yaml.safe_load(meta["annotations"]["artifacthub.io/changes"]) == ["first (with a; b)", "second"]


def test_asking_for_a_library_chart_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(_tree_with_library(tmp_path), "lib") == 1
    err = capsys.readouterr().err.strip()
    assert "lib is a library chart" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "dist").exists()


def test_missing_dependency_symlink_is_named_with_the_command_that_creates_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path, link=False)
    assert _run(charts) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "dependency lib (file://../lib) is missing" in err[0] and "ln -sfn ../../lib" in err[0]
    assert err[0].endswith("app/charts/lib`")


def test_a_packaged_copy_next_to_the_symlink_is_left_out_of_the_archive(tmp_path: Path) -> None:
    charts = _tree_with_library(tmp_path)
    (charts / "app" / "charts" / "lib-0.0.9.tgz").write_bytes(b"stale copy from helm dependency build")
    assert _run(charts) == 0
    bundled = sorted(m for m in _members(tmp_path / "dist" / "app-1.2.3.tgz") if m.startswith("app/charts/"))
    assert bundled == ["app/charts/lib/Chart.yaml", "app/charts/lib/templates/_names.tpl"]


def test_a_symlink_to_another_chart_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path)
    _write(charts / "other" / "Chart.yaml", "apiVersion: v2\nname: lib\nversion: 9.9.9\ntype: library\n")
    link = charts / "app" / "charts" / "lib"
    link.unlink()
    link.symlink_to("../../other")
    assert _run(charts) == 1
    assert "is not file://../lib" in capsys.readouterr().err


def test_a_chart_version_without_changelog_entry_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path)
    (charts / "app" / "Chart.yaml").write_text(
        (charts / "app" / "Chart.yaml").read_text().replace("1.2.3", "1.2.4"))
    assert _run(charts) == 1
    err = capsys.readouterr().err.strip()
    assert "has no entry `- app 1.2.4: ...`" in err and "## Unreleased" in err and len(err.splitlines()) == 1


def test_unknown_chart_and_unreadable_chart_yaml_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path)
    assert _run(charts, "nope") == 1
    assert "nope: no such chart" in capsys.readouterr().err
    (charts / "app" / "Chart.yaml").write_text("name: [unclosed\n")
    assert _run(charts) == 2
    err = capsys.readouterr().err.strip()
    assert "app/Chart.yaml: not valid YAML" in err and len(err.splitlines()) == 1


def test_push_refuses_a_non_oci_registry_and_missing_archives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path)
    assert main(["push", "https://example.com/charts", "--charts-dir", str(charts)]) == 2
    assert "must be an oci:// reference" in capsys.readouterr().err
    assert main(["push", "oci://127.0.0.1:1/x", "--charts-dir", str(charts), "--dist", str(tmp_path / "d")]) == 1
    assert "app-1.2.3.tgz: missing (run `make package` first)" in capsys.readouterr().err


def test_usage_error_is_exit_2() -> None:
    assert main(["--no-such-flag"]) == 2


# --- CHANGELOG.md parsing ---------------------------------------------------------------------------------


def test_changelog_entries_join_continuation_lines_and_ignore_entries_without_a_chart() -> None:
    text = ("## Unreleased\n- nova 1.0.0: one `a; b`;\n  two (x; y); three.\n- tools.lint: no chart\n"
            "\n## 0.9\n- nova 0.9.0: old\n")
    assert changelog.changes_for(text, "nova", "1.0.0") == ["one `a; b`", "two (x; y)", "three"]
    assert changelog.changes_for(text, "nova", "0.9.0") == ["old"]
    assert [e.section for e in changelog.entries(text)] == ["Unreleased", "0.9"]
    assert changelog.changes_for(text, "tools.lint", "1.0.0") == []


def test_every_application_chart_version_has_changelog_entries() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    missing = [f"{c.name} {c.version}" for c in APP_CHARTS if not changelog.changes_for(text, c.name, c.version)]
    assert not missing, f"CHANGELOG.md has no `- <chart> <version>:` entry for {missing}"


# --- .github/workflows/release.yaml ----------------------------------------------------------------------


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def _workflow() -> dict[Any, Any]:
    return yaml.safe_load(RELEASE_WORKFLOW.read_text())


def _steps() -> list[dict[str, Any]]:
    return [s for job in _workflow()["jobs"].values() for s in job["steps"]]


def test_release_workflow_runs_on_version_tags_and_by_hand() -> None:
    on = _workflow()[True]  # YAML 1.1 reads the `on` key as a boolean
    assert on["push"]["tags"] == ["v*"] and "workflow_dispatch" in on
    permissions = {k: v for job in _workflow()["jobs"].values() for k, v in job.get("permissions", {}).items()}
    assert permissions.get("packages") == "write"


def test_release_workflow_runs_only_make_targets_and_tools_that_exist() -> None:
    runs = "\n".join(s.get("run", "") for s in _steps())
    targets = re.findall(r"\bmake ([a-z][a-z-]*)", runs)
    tools = re.findall(r"python -m (tools(?:\.[a-z_]+)+)", runs)
    assert "package" in targets and "tools.package" in tools
    assert set(targets) <= _make_targets(), f"unknown make targets: {set(targets) - _make_targets()}"
    for mod in tools:
        assert (ROOT / Path(*mod.split(".")) / "__main__.py").is_file() or (
            ROOT / Path(*mod.split("."))).with_suffix(".py").is_file(), f"{mod} is not a tool of this repository"
    assert "oci://ghcr.io/" in runs and "registry login ghcr.io" in runs


def test_release_workflow_uses_the_pinned_helm_and_pinned_actions() -> None:
    runs = "\n".join(s.get("run", "") for s in _steps())
    assert "make setup" in runs or "make package" in runs  # `make package` depends on `make setup`
    assert re.findall(r"(?<![./\w])helm ", runs) == [], "call .venv/bin/helm (pinned, sha256-checked)"
    for step in _steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]
            assert "setup-helm" not in step["uses"], "helm comes from `make setup`, pinned in scripts/versions.env"


def test_push_to_an_unreachable_registry_is_an_error_not_a_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charts = _tree_with_library(tmp_path)
    assert _run(charts) == 0
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    capsys.readouterr()
    assert main(["push", f"oci://127.0.0.1:{port}/x", "--plain-http", "--charts-dir", str(charts),
                 "--dist", str(tmp_path / "dist")]) == 2
    captured = capsys.readouterr()
    assert "connection refused" in captured.err and f"oci://127.0.0.1:{port}/x/app:1.2.3" in captured.err
    assert "pushed" not in captured.out and "already published" not in captured.out
