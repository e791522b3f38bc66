"""The Kubernetes version pins live in tools/kube_versions.py; everything else agrees with it."""

from __future__ import annotations

import re

import yaml

from tools import charts, kube_versions
from tools.lint import cli as lint_cli
from tools.lint import schema as lint_schema
from tools.lint.config import find_config, load_config
from tools.schema import k8s

ROOT = charts.REPO_ROOT


def test_every_chart_declares_the_pinned_minimum_kubernetes_version() -> None:
    for chart in charts.discover():  # the installable ones (a library chart is never installed alone)
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        assert meta.get("kubeVersion") == kube_versions.chart_constraint(), chart


def test_lint_defaults_to_the_supported_versions_and_the_repo_config_does_not_repeat_them() -> None:
    config = load_config(find_config(ROOT))
    assert config.kube_versions == ()
    args = lint_cli.build_parser().parse_args([])
    assert lint_cli._kube_versions(args, config) == list(kube_versions.supported())
    assert kube_versions.supported() == (kube_versions.MINIMUM, lint_schema.newest_version())


def test_the_schema_bundle_version_is_the_pinned_one_and_has_schemas() -> None:
    assert k8s.K8S_VERSION == kube_versions.full(kube_versions.SCHEMA)
    assert kube_versions.SCHEMA in lint_schema.supported_versions()
    assert kube_versions.MINIMUM in lint_schema.supported_versions()


def test_the_kind_ci_matrix_starts_at_the_minimum_version() -> None:
    workflow = (ROOT / ".github" / "workflows" / "install.yaml").read_text()
    versions = re.findall(r'^\s*- k8s: "(\d+\.\d+)"', workflow, re.MULTILINE)
    assert versions and versions[0] == kube_versions.MINIMUM


def test_no_tool_pins_a_kubernetes_version_of_its_own() -> None:
    """No assignment or default of a version string in tools/ outside kube_versions.py (docstrings may show one)."""
    pin = re.compile(r"""=\s*[^=\n]*["']v?1\.(2\d|3\d)(\.\d+)?["']""")
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for p in sorted((ROOT / "tools").rglob("*.py")) if p.name != "kube_versions.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pin.search(line) and not line.lstrip().startswith("#")]
    assert offenders == []
