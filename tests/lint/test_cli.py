"""python -m tools.lint end to end: inputs, exit codes, config, suppressions, render errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lint.conftest import BASELINE, DEMO_CHART, case_file, run_lint
from tools import helm

CLEAN = BASELINE
PRIVILEGED = case_file("no-privileged", "privileged")
SLOW_START = case_file("startup-probe", "long-initial-delay-instead-of-startup-probe")


def _findings(result_out: str) -> list[dict]:
    return json.loads(result_out)["findings"]


def test_clean_manifest_exits_0() -> None:
    result = run_lint(["--manifests", str(CLEAN), "--no-config"])
    assert (result.code, result.err) == (0, "")
    assert "no findings" in result.out


def test_findings_at_failing_severity_exit_1_and_name_rule_object_container_and_path() -> None:
    result = run_lint(["--manifests", str(PRIVILEGED), "--no-config", "--format", "json"])
    assert result.code == 1
    (finding,) = _findings(result.out)
    assert finding["rule"] == "no-privileged"
    assert (finding["kind"], finding["namespace"], finding["name"]) == ("Deployment", "nova-services", "api")
    assert finding["container"] == "api"
    assert finding["path"] == "spec.template.spec.containers[0].securityContext.privileged"
    assert finding["template"] == str(PRIVILEGED) and finding["line"] == 3


def test_findings_below_fail_on_exit_0() -> None:
    result = run_lint(["--manifests", str(SLOW_START), "--no-config"])
    assert result.code == 1  # warning fails by default
    result = run_lint(["--manifests", str(SLOW_START), "--no-config",
                       "--fail-on", "error"])
    assert result.code == 0 and "startup-probe" in result.out


def test_manifests_from_stdin_keep_their_source_template() -> None:
    text = "---\n# Source: demo/templates/deployment.yaml\n" + PRIVILEGED.read_text().split("---\n", 1)[1]
    result = run_lint(["--manifests", "-", "--no-config", "--format", "json"], stdin=text)
    assert result.code == 1
    assert {f["template"] for f in _findings(result.out)} == {"demo/templates/deployment.yaml"}


def test_real_stdin_pipe_through_python_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "tools.lint", "--manifests", "-", "--no-config", "--format", "json"],
                          input=PRIVILEGED.read_text(), capture_output=True, text=True, cwd=helm.REPO_ROOT,
                          check=False)
    assert proc.returncode == 1, proc.stderr
    assert [f["rule"] for f in json.loads(proc.stdout)["findings"]] == ["no-privileged"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "usage error: unrecognized arguments: --bogus"),
    (["--manifests", "/nonexistent.yaml"], "input error: /nonexistent.yaml: cannot read"),
    (["--manifests", "x.yaml", "--chart", "charts/nova"], "usage error: --manifests cannot be combined"),
    (["-f", "values/local.yaml"], "usage error: -f/--set need --chart DIR"),
    (["--manifests", "-", "--kube-version", "9.99"], "usage error: --kube-version 9.99: kubernetes-validate has"),
])
def test_usage_and_input_errors_exit_2_with_one_line(argv: list[str], message: str) -> None:
    result = run_lint([*argv, "--no-config"])
    assert result.code == 2
    assert result.err.startswith(message), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_help_returns_0_from_main() -> None:
    result = run_lint(["--help"])
    assert result.code == 0 and "--manifests" in result.out


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\n---\nmetadata: {name: [\n")
    result = run_lint(["--manifests", str(bad), "--no-config"])
    assert result.code == 2
    assert result.err.startswith(f"input error: {bad}:") and "not valid YAML" in result.err


# --- config -------------------------------------------------------------------------------------

def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / ".nova-lint.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "message"), [
    ("suppress:\n  - {rule: no-such-rule, reason: x}\n", "suppress[0].rule: unknown rule 'no-such-rule'"),
    ("suppress:\n  - {rule: no-privileged}\n", "suppress[0].reason: a suppression needs a reason"),
    ("suppress:\n  - {rule: no-privileged, reason: '  '}\n", "suppress[0].reason: a suppression needs a reason"),
    ("rules:\n  no-such-rule: {severity: info}\n", "rules.no-such-rule: unknown rule"),
    ("rules:\n  no-privileged: {severity: fatal}\n", "rules.no-privileged.severity: unknown severity 'fatal'"),
    ("rules:\n  startup-probe: {slow-start-seconds: soon}\n", "rules.startup-probe.slow-start-seconds: expected a int"),
    ("rules:\n  startup-probe: {slow_start: 3}\n", "rules.startup-probe.slow_start: unknown setting"),
    ("fail_on: error\n", "fail_on: unknown key"),
    ("rules:\n  invalid-suppression: {severity: off}\n", "cannot be turned off"),
    ("suppress: [{rule: invalid-suppression, reason: x}]\n", "invalid-suppression cannot be suppressed"),
    ("a: [\n", "not valid YAML"),
    ("rules:\n  resilience-policy: {max-request-timeout: soon}\n", "max-request-timeout 'soon' is not a duration"),
    ("rules:\n  resilience-policy: {bare-number-unit: d}\n", "bare-number-unit must be one of"),
])
def test_config_errors_exit_2_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _config(tmp_path, text)
    result = run_lint(["--manifests", str(CLEAN), "--config", path])
    assert result.code == 2
    assert result.err.startswith(f"config error: {path}") and message in result.err, result.err
    assert result.err.count("\n") == 1


def test_config_suppression_with_reason_hides_matching_findings_only(tmp_path: Path) -> None:
    path = _config(tmp_path, "suppress:\n  - {rule: no-privileged, kind: Deployment, name: 'ap*', container: api,"
                             " reason: 'needs /dev/fuse'}\n")
    assert run_lint(["--manifests", str(PRIVILEGED), "--config", path]).code == 0
    path = _config(tmp_path, "suppress:\n  - {rule: no-privileged, name: other, reason: 'not this one'}\n")
    assert run_lint(["--manifests", str(PRIVILEGED), "--config", path]).code == 1


def test_config_sets_severity_off_and_thresholds(tmp_path: Path) -> None:
    path = _config(tmp_path, "rules:\n  no-privileged: {severity: 'off'}\n")
    assert run_lint(["--manifests", str(PRIVILEGED), "--config", path]).code == 0
    path = _config(tmp_path, "rules:\n  no-privileged: {severity: info}\n")
    result = run_lint(["--manifests", str(PRIVILEGED), "--config", path, "--format", "json"])
    assert result.code == 0 and _findings(result.out)[0]["severity"] == "info"
    fail = case_file("resilience-policy", "limits-exceeded-in-config-map")
    path = _config(tmp_path, "rules:\n  resilience-policy: {max-request-timeout: 60s, max-connect-timeout: 2s}\n")
    messages = [f["message"] for f in _findings(run_lint(["--manifests", str(fail), "--config", path,
                                                            "--format", "json"]).out)]
    assert not any("TIMEOUT" in m for m in messages) and len(messages) == 2


def test_pyproject_tool_section_is_found_from_the_working_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nova-lint]\nfail-on = "error"\n'
                                            '[tool.nova-lint.rules.no-privileged]\nseverity = "warning"\n')
    monkeypatch.chdir(tmp_path)
    assert run_lint(["--manifests", str(PRIVILEGED)]).code == 0
    (tmp_path / "pyproject.toml").write_text('[tool.nova-lint]\nsuppress = [{rule = "nope", reason = "x"}]\n')
    result = run_lint(["--manifests", str(PRIVILEGED)])
    assert result.code == 2 and "[tool.nova-lint]: suppress[0].rule: unknown rule 'nope'" in result.err


# --- annotation suppressions ----------------------------------------------------------------------

def _two_container_manifest(annotations: dict[str, str]) -> str:
    import yaml
    docs = list(yaml.safe_load_all(PRIVILEGED.read_text()))
    dep = docs[0]
    side = {**dep["spec"]["template"]["spec"]["containers"][0], "name": "side"}
    dep["spec"]["template"]["spec"]["containers"].append(side)
    dep["metadata"]["annotations"] = annotations
    return yaml.safe_dump_all(docs)


def test_annotation_per_container_suppresses_only_that_container() -> None:
    text = _two_container_manifest({"nova-lint.io/ignore.no-privileged.api": "api needs /dev/fuse"})
    result = run_lint(["--manifests", "-", "--no-config", "--format", "json"], stdin=text)
    assert [(f["rule"], f["container"]) for f in _findings(result.out)] == [("no-privileged", "side")]


def test_annotation_per_rule_suppresses_every_container() -> None:
    text = _two_container_manifest({"nova-lint.io/ignore.no-privileged": "FUSE mounts in both containers"})
    assert run_lint(["--manifests", "-", "--no-config"], stdin=text).code == 0


def test_annotation_without_reason_or_for_unknown_rule_suppresses_nothing_and_is_reported() -> None:
    text = _two_container_manifest({"nova-lint.io/ignore.no-privileged": "", "nova-lint.io/ignore.nope": "why"})
    result = run_lint(["--manifests", "-", "--no-config", "--format", "json"], stdin=text)
    rules = sorted(f["rule"] for f in _findings(result.out))
    assert rules == ["invalid-suppression", "invalid-suppression", "no-privileged", "no-privileged"]
    assert result.code == 1


# --- rendering through helm -----------------------------------------------------------------------

def test_chart_render_traces_findings_to_the_template_file() -> None:
    result = run_lint(["--chart", str(DEMO_CHART), "-f", str(DEMO_CHART / "ci" / "privileged.yaml"),
                       "--no-config", "--format", "json", "--kube-version", "1.29"])
    assert result.code == 1, result.err
    (finding,) = _findings(result.out)
    assert finding["rule"] == "no-privileged"
    assert Path(finding["template"]).resolve() == (DEMO_CHART / "templates" / "deployment.yaml").resolve()
    assert "privileged.yaml" in finding["input"]


def test_chart_renders_clean_for_each_default_kube_version() -> None:
    result = run_lint(["--chart", str(DEMO_CHART), "--no-config"])
    assert (result.code, result.err) == (0, "")


def test_helm_error_exits_2_naming_chart_and_values_file() -> None:
    values = DEMO_CHART / "ci" / "privileged.yaml"
    result = run_lint(["--chart", str(DEMO_CHART), "-f", str(values), "--set", "broken=true", "--no-config",
                       "--kube-version", "1.29"])
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("error: render error:") and str(DEMO_CHART) in line and str(values) in line
    assert "broken on purpose" in line


def test_runtime_labels_setting_ignores_labels_a_controller_sets_on_pods(tmp_path: Path) -> None:
    import yaml
    docs = list(yaml.safe_load_all(CLEAN.read_text().split("\n", 1)[1]))
    service = next(d for d in docs if d["kind"] == "Service")
    service["spec"]["selector"]["example.org/role"] = "primary"  # set at run time, not in the pod template
    text = yaml.safe_dump_all(docs)
    result = run_lint(["--manifests", "-", "--no-config", "--format", "json"], stdin=text)
    assert [f["rule"] for f in _findings(result.out)] == ["service-selector"]
    path = _config(tmp_path, "rules:\n  service-selector: {runtime-labels: [example.org/role]}\n")
    assert run_lint(["--manifests", "-", "--config", path], stdin=text).code == 0


def test_helm3_and_helm4_renders_give_the_same_findings() -> None:
    from tests.conftest import helm_path

    runs = []
    for major in (4, 3):
        try:
            binary = helm_path(major)
        except helm.HelmError as exc:
            pytest.skip(str(exc))
        result = run_lint(["--chart", str(DEMO_CHART), "-f", str(DEMO_CHART / "ci" / "privileged.yaml"),
                           "--helm", binary, "--no-config", "--format", "json"])
        assert result.code == 1, result.err
        runs.append(_findings(result.out))
    assert runs[0] == runs[1] and runs[0]
