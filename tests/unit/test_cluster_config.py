"""The Kind cluster config, ct.yaml and the workflows say what issue 7 asks: parsed, not grepped."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tools.ctlint import config as ct_config

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _steps(workflow: str, job: str) -> list[dict]:
    data = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return data["jobs"][job]["steps"]


def _runs(steps: list[dict]) -> list[str]:
    return [s.get("run", "") for s in steps]


def _index(steps: list[dict], pred) -> int:
    return next(i for i, s in enumerate(steps) if pred(s))


def test_kind_cluster_has_one_control_plane_and_three_workers_in_three_zones() -> None:
    cfg = yaml.safe_load((ROOT / "kind" / "cluster.yaml").read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker"]
    zones = {n["labels"]["topology.kubernetes.io/zone"] for n in cfg["nodes"] if n["role"] == "worker"}
    assert len(zones) == 3


def test_ct_yaml_checks_versions_against_main_and_runs_our_tools() -> None:
    cfg = ct_config.load(ROOT / "ct.yaml", ROOT)
    assert cfg.chart_dirs == ("charts",) and cfg.target_branch == "main"
    assert cfg.check_version_increment and cfg.validate_chart_schema and cfg.validate_yaml
    assert cfg.lint_conf == ROOT / "lintconf.yaml" and cfg.chart_yaml_schema == ROOT / "chart_schema.yaml"
    assert any("tools.schema" in c for c in cfg.additional_commands)
    assert any("tools.lint" in c for c in cfg.additional_commands)
    raw = yaml.safe_load((ROOT / "ct.yaml").read_text())
    assert raw["validate-maintainers"] is False
    assert re.search(r"--timeout \d+s", raw["helm-extra-args"])


def test_lint_workflow_runs_ct_lint_schema_policy_lint_ct_lint_tool_and_tests() -> None:
    ct = _steps("lint.yaml", "ct-lint")
    assert any(s.get("uses", "").startswith("helm/chart-testing-action@") for s in ct)
    assert "ct lint --config ct.yaml" in _runs(ct)
    assert next(s for s in ct if s.get("uses", "").startswith("actions/checkout@"))["with"]["fetch-depth"] == 0
    runs = _runs(_steps("lint.yaml", "checks-and-tests"))
    for cmd in (".venv/bin/python -m tools.schema --check", ".venv/bin/python -m tools.lint", "make ct-lint",
                "make test"):
        assert cmd in runs


def test_install_workflow_creates_kind_then_ct_install_then_deploy_then_cluster_tests() -> None:
    steps = _steps("install.yaml", "kind")
    kind = _index(steps, lambda s: s.get("uses", "").startswith("helm/kind-action@"))
    assert steps[kind]["with"]["config"] == "kind/cluster.yaml"
    ct = _index(steps, lambda s: s.get("run", "").startswith("ct install --config ct.yaml"))
    deploy = _index(steps, lambda s: "-m tools.cluster deploy" in s.get("run", ""))
    test = _index(steps, lambda s: "-m tools.cluster test" in s.get("run", ""))
    assert kind < ct < deploy < test


def test_install_workflow_covers_two_kubernetes_minor_versions_with_pinned_node_images() -> None:
    data = yaml.safe_load((WORKFLOWS / "install.yaml").read_text())
    matrix = data["jobs"]["kind"]["strategy"]["matrix"]["include"]
    assert len(matrix) == 2
    minors = set()
    for entry in matrix:
        m = re.fullmatch(r"kindest/node:v1\.(\d+)\.\d+@sha256:[0-9a-f]{64}", entry["node_image"])
        assert m, entry["node_image"]
        minors.add(int(m.group(1)))
        assert entry["kubectl"].startswith(f"v1.{m.group(1)}."), "kubectl must match the cluster's minor version"
    assert len(minors) == 2 and min(minors) == 29  # the lowest kubeVersion the charts accept
    kind_step = next(s for s in data["jobs"]["kind"]["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind_step["with"]["node_image"] == "${{ matrix.node_image }}"
