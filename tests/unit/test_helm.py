"""tools.helm: finding helm, rendering, parsing, and errors that name the chart and values file."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from tools import helm


def _chart(tmp_path: Path, name: str = "demo", template: str | None = None) -> Path:
    chart = tmp_path / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 2\n")
    (chart / "templates" / "cm.yaml").write_text(
        template
        or "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  replicas: {{ .Values.replicas | quote }}\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n"
    )
    return chart


def test_helm_env_variable_wins_over_venv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "myhelm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("HELM", str(fake))
    assert helm.find_helm(4) == str(fake)


def test_venv_helm_is_used_when_no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELM", raising=False)
    assert helm.find_helm(4) == str(helm.REPO_ROOT / ".venv" / "bin" / "helm")
    monkeypatch.delenv("HELM3", raising=False)
    assert helm.find_helm(3) == str(helm.REPO_ROOT / ".venv" / "bin" / "helm3")


def test_missing_helm_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(helm, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("HELM3", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(helm.HelmError, match="make setup"):
        helm.find_helm(3)


@pytest.mark.parametrize("major", [4, 3])
def test_pinned_helm_versions_are_installed(major: int) -> None:
    assert helm.version(helm.find_helm(major)).startswith("v4.3.1" if major == 4 else "v3.19.0")


@pytest.mark.parametrize("major", [4, 3])
def test_render_returns_objects_with_their_template(tmp_path: Path, major: int) -> None:
    chart = _chart(tmp_path)
    objs = helm.render(chart, set_values=["replicas=5"], helm=helm.find_helm(major), release="r1")
    by_kind = {o.kind: o for o in objs}
    assert by_kind["ConfigMap"].name == "r1-cm"
    assert by_kind["ConfigMap"]["data"] == {"replicas": "5"}
    assert by_kind["ConfigMap"].source == "demo/templates/cm.yaml"
    # items of a List are flattened and keep the List's template
    assert by_kind["Service"].source == "demo/templates/cm.yaml"


def test_render_with_values_file(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    vals = tmp_path / "v.yaml"
    vals.write_text("replicas: 7\n")
    (obj,) = [o for o in helm.render(chart, [vals]) if o.kind == "ConfigMap"]
    assert obj["data"]["replicas"] == "7"


def test_helm_error_is_verbatim_and_names_chart_and_values(tmp_path: Path) -> None:
    chart = _chart(tmp_path, template="{{ fail \"boom: set replicas\" }}\n")
    vals = tmp_path / "v.yaml"
    vals.write_text("replicas: 1\n")
    with pytest.raises(helm.HelmError) as err:
        helm.render(chart, [vals])
    msg = str(err.value)
    assert "boom: set replicas" in msg and str(chart) in msg and str(vals) in msg


def test_missing_values_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(helm.HelmError, match="values file .*missing.yaml does not exist"):
        helm.render(_chart(tmp_path), [tmp_path / "missing.yaml"])


def test_not_a_chart_is_named(tmp_path: Path) -> None:
    with pytest.raises(helm.HelmError, match="not a chart"):
        helm.render(tmp_path)


def test_file_dependencies_are_built_and_rebuilt_when_they_change(tmp_path: Path) -> None:
    _chart(tmp_path, "child")
    parent = _chart(tmp_path, "parent")
    with (parent / "Chart.yaml").open("a") as fh:
        fh.write("dependencies:\n- name: child\n  version: 0.1.0\n  repository: file://../child\n")
    assert any(o.name == "nova-cm" for o in helm.render(parent))
    assert len(list((parent / "charts").glob("child-*.tgz"))) == 1
    (tmp_path / "child" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: changed\n"
    )
    future = (parent / "charts").stat().st_mtime + 10
    os.utime(tmp_path / "child" / "templates" / "cm.yaml", (future, future))
    assert any(o.name == "changed" for o in helm.render(parent))


def test_parse_manifests_skips_empty_documents() -> None:
    text = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n---\n\n---\n"
    (obj,) = helm.parse_manifests(text)
    assert obj.ref == "Secret/a" and obj.source == "c/templates/a.yaml"


def test_missing_file_dependency_is_a_helm_error_naming_it(tmp_path: Path) -> None:
    parent = _chart(tmp_path, "parent")
    with (parent / "Chart.yaml").open("a") as fh:
        fh.write("dependencies:\n- name: ghost\n  version: 0.1.0\n  repository: file://../ghost\n")
    with pytest.raises(helm.HelmError, match="dependency 'ghost' points at file://../ghost"):
        helm.render(parent)


def test_helm_lint_errors_printed_on_stdout_are_kept(tmp_path: Path) -> None:
    chart = _chart(tmp_path, template="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.x.y }}\n")
    with pytest.raises(helm.HelmError, match=r"\[ERROR\]"):
        helm.run(["lint", str(chart)], context=f"chart {chart}")


def test_a_stale_chart_lock_says_how_to_fix_it(tmp_path: Path) -> None:
    _chart(tmp_path, "child")
    parent = _chart(tmp_path, "parent")
    with (parent / "Chart.yaml").open("a") as fh:
        fh.write("dependencies:\n- name: child\n  version: '>=0.1.0'\n  repository: file://../child\n")
    helm.render(parent)  # builds, no lock yet
    helm.run(["dependency", "update", str(parent)])
    (tmp_path / "child" / "Chart.yaml").write_text("apiVersion: v2\nname: child\nversion: 0.2.0\n")
    with pytest.raises(helm.HelmError, match=r"child locked at 0.1.0, chart is 0.2.0.*helm dependency update"):
        helm.render(parent)


def test_committed_chart_locks_match_the_local_charts() -> None:
    for chart in helm.charts():
        assert helm.stale_lock_entries(chart) == [], chart


def test_a_missing_helm_fails_the_test_with_one_line_never_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import conftest

    def no_helm(major: int = 4) -> str:
        raise helm.HelmError(f"helm {major} not found: set HELM3, or run `make setup` to install it")

    monkeypatch.setattr(helm, "find_helm", no_helm)
    conftest.helm_path.cache_clear()
    try:
        with pytest.raises(pytest.fail.Exception, match=r"^helm 3 not found: .*make setup.*both required\)$"):
            conftest.helm_path(3)
    finally:
        conftest.helm_path.cache_clear()


def test_no_test_skips_when_helm_is_missing() -> None:
    """tests/conftest.py's rule (fail, never skip) holds everywhere: no local try/skip around find_helm."""
    skip_on_missing = re.compile(r"find_helm\([^\n]*\n\s*except helm\.HelmError[^\n]*:\s*\n\s*pytest\.skip")
    tests = Path(__file__).resolve().parent.parent
    offenders = [str(p.relative_to(tests)) for p in sorted(tests.rglob("*.py"))
                 if skip_on_missing.search(p.read_text())]
    assert offenders == []
