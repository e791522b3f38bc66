"""python -m tools.lint end to end: inputs, exit codes, config, suppressions, render errors."""

from __future__ import annotations

import json
import re
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
    assert line.startswith("render error:") and str(DEMO_CHART) in line and str(values) in line
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
        binary = helm_path(major)
        result = run_lint(["--chart", str(DEMO_CHART), "-f", str(DEMO_CHART / "ci" / "privileged.yaml"),
                           "--helm", binary, "--no-config", "--format", "json"])
        assert result.code == 1, result.err
        runs.append(_findings(result.out))
    assert runs[0] == runs[1] and runs[0]


# --- never clean when something was not checked (issue 10.5) ---------------------------------------

def _empty_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "empty"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: empty\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("{{- if .Values.on }}\napiVersion: v1\nkind: ConfigMap\n"
                                                 "metadata: {name: x}\n{{- end }}\n")
    return chart


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


# (argv from tmp_path, stdin, kind, words the error must contain (from tmp_path))
FAILURES = {
    "nonexistent-chart": (lambda t: ["--chart", str(t / "nope")], "", "input",
                          lambda t: [str(t / "nope"), "no such chart directory"]),
    "not-a-chart": (lambda t: ["--chart", str(t)], "", "input", lambda t: [str(t), "not a chart (no Chart.yaml)"]),
    "missing-values-file": (lambda t: ["--chart", str(DEMO_CHART), "-f", str(t / "gone.yaml")], "", "input",
                            lambda t: [str(DEMO_CHART), str(t / "gone.yaml"), "no such file"]),
    "broken-values-file": (lambda t: ["--chart", str(DEMO_CHART), "-f", _write(t, "broken.yaml", "a: [\n")], "",
                           "render", lambda t: [str(DEMO_CHART), str(t / "broken.yaml"), "yaml: line 1"]),
    "render-error": (lambda t: ["--chart", str(DEMO_CHART), "--set", "broken=true"], "", "render",
                     lambda t: [str(DEMO_CHART), "broken on purpose", "Kubernetes 1.29"]),
    "broken-manifest": (lambda t: ["--manifests", _write(t, "bad.yaml", "kind: ConfigMap\nmetadata: {name: [\n")],
                        "", "input", lambda t: [f"{t / 'bad.yaml'}:3", "not valid YAML"]),
    "missing-manifest": (lambda t: ["--manifests", str(t / "none.yaml")], "", "input",
                         lambda t: [str(t / "none.yaml"), "cannot read"]),
    "empty-stdin": (lambda t: ["--manifests", "-"], "", "empty", lambda t: ["stdin had no Kubernetes objects"]),
    "whitespace-stdin": (lambda t: ["--manifests", "-"], "\n---\n# nothing\n", "empty",
                         lambda t: ["stdin had no Kubernetes objects"]),
    "chart-without-objects": (lambda t: ["--chart", str(_empty_chart(t))], "", "empty",
                              lambda t: ["the renders had no Kubernetes objects"]),
}


def _reported_errors(fmt: str, out: str) -> tuple[bool, list[tuple[str, str]], int]:
    """(looks clean, [(kind, text)] of the errors, number of findings) as a reader of ``fmt`` sees them."""
    if fmt == "json":
        data = json.loads(out)
        return data["ok"], [(e["kind"], str(e)) for e in data["errors"]], len(data["findings"])
    if fmt == "sarif":
        from tests.lint.test_formats import validate_sarif

        run = validate_sarif(json.loads(out))["runs"][0]
        (invocation,) = run["invocations"]
        notes = invocation.get("toolExecutionNotifications", [])
        assert all(n["level"] == "error" for n in notes)
        return (invocation["executionSuccessful"], [(n["properties"]["kind"], n["message"]["text"]) for n in notes],
                len(run["results"]))
    if fmt == "junit":
        import xml.etree.ElementTree as ET

        suite = ET.fromstring(out).find("testsuite")
        assert suite is not None
        errors = [(c.get("classname", "").removeprefix("nova-lint.").removesuffix("-error"), c.find("error").text or "")
                  for c in suite.iter("testcase") if c.find("error") is not None]
        passing = [c for c in suite.iter("testcase") if not list(c)]
        assert int(suite.get("errors", "0")) == len(errors)
        return bool(passing) and not errors, errors, len(suite.findall("testcase/failure"))
    if fmt == "github":
        lines = out.splitlines()
        errors = [(line.split("nova-lint ", 1)[1].split(" error::", 1)[0], line) for line in lines
                  if line.startswith("::error title=nova-lint ") and " error::" in line]
        return not lines[-1].startswith("::error title=nova-lint summary::FAILED"), errors, 0
    lines = out.splitlines()
    block = lines[lines.index("could not check:") + 1:-1] if "could not check:" in lines else []
    kinds = [("empty" if line.strip().startswith("nothing to lint") else line.split()[0]) for line in block]
    return not lines[-1].startswith("FAILED: "), list(zip(kinds, block, strict=True)), 0


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github"])
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failed_render_or_load_is_reported_in_every_format_and_never_as_clean(
        case: str, fmt: str, tmp_path: Path) -> None:
    argv, stdin, kind, words = FAILURES[case]
    result = run_lint([*argv(tmp_path), "--no-config", "--kube-version", "1.29", "--format", fmt], stdin=stdin)
    assert result.code == 2, result.err
    assert "no findings" not in result.out
    clean, errors, findings = _reported_errors(fmt, result.out)
    assert not clean and findings == 0
    assert [k for k, _ in errors] == [kind], errors
    for word in words(tmp_path):
        assert word in errors[0][1], (word, errors[0][1])
    (line,) = result.err.splitlines()  # and one line on stderr, the same words
    assert all(word in line for word in words(tmp_path)) and "Traceback" not in line


def test_a_clean_chart_run_ends_with_one_line_saying_what_was_checked() -> None:
    from tools import kube_versions
    from tools.lint.config import Config
    from tools.lint.rules import RULES

    result = run_lint(["--chart", str(DEMO_CHART), "--no-config"])
    assert (result.code, result.err) == (0, "")
    versions = kube_versions.supported()
    rules = sum(1 for r in RULES if Config().severity(r) is not None)
    pattern = (rf"no findings; checked 1 chart with 1 value set \(defaults and profiles\) x {len(versions)} "
               rf"Kubernetes versions \({re.escape(', '.join(versions))}\) = {len(versions)} renders: "
               rf"{2 * len(versions)} objects, {rules} rules in \d+\.\ds")
    assert re.fullmatch(pattern, result.out.splitlines()[-1]), result.out


def test_a_clean_manifest_run_names_the_file_objects_and_versions(tmp_path: Path) -> None:
    rendered = _write(tmp_path, "demo.yaml", helm.render_text(DEMO_CHART))
    result = run_lint(["--manifests", rendered, "--no-config", "--kube-version", "1.29"])
    assert result.code == 0, result.out
    assert re.fullmatch(rf"no findings; checked {re.escape(rendered)} for 1 Kubernetes version \(1\.29\): "
                        r"2 objects, \d+ rules in \d+\.\ds", result.out.splitlines()[-1])


def test_with_output_file_the_report_goes_there_and_stdout_gets_the_summary_line(tmp_path: Path) -> None:
    report = tmp_path / "lint.sarif"
    result = run_lint(["--chart", str(DEMO_CHART), "--set", "broken=true", "--no-config", "--kube-version", "1.29",
                       "--format", "sarif", "-o", str(report)])
    assert result.code == 2
    (line,) = result.out.splitlines()
    assert line.startswith("FAILED: 1 input not checked (render error); 0 findings in the rest; checked 1 chart")
    assert json.loads(report.read_text())["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_parallel_renders_are_linted_and_reported_in_input_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renders run in a thread pool; the first ones finishing last must not change the report's order."""
    import argparse
    import itertools
    import time

    from tools.lint import cli

    wanted = [(DEMO_CHART, [name], name) for name in ("a", "b-missing", "c", "d")]
    submitted = itertools.count()
    linted: list[tuple[str, str]] = []

    def render(chart: Path, values: list[str], set_values: list[str], *, kube_version: str, **_: object) -> list[str]:
        time.sleep(0.05 * (8 - next(submitted)))  # the first submitted finishes last
        if values == ["c"] and kube_version.startswith("1.37"):
            raise helm.HelmError("render failed")
        return [kube_version]

    monkeypatch.setattr(cli, "render_chart", render)
    monkeypatch.setattr(cli, "_render_workers", lambda: 4)
    monkeypatch.setattr(cli, "lint", lambda objs, config, vs, label: linted.append((label, vs[0])) or [])
    monkeypatch.setattr(cli, "_missing_input", lambda chart, values: "no such file" if "missing" in values[0] else None)
    args = argparse.Namespace(set_values=[], helm=None, namespace="default", release="nova")
    _, errors, objects, renders = cli._lint_charts(args, wanted, cli.Config(), ["1.29", "1.37"])
    assert linted == [("a", "1.29"), ("a", "1.37"), ("c", "1.29"), ("d", "1.29"), ("d", "1.37")]
    assert [e.input for e in errors] == ["b-missing", "c (Kubernetes 1.37)"] and (objects, renders) == (5, 5)
