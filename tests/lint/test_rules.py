"""Every rule against its cases (baseline + patch), and the meta-tests: every rule has cases, docs and metadata."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.lint.cases import (
    BASELINE,
    FIXTURES,
    Case,
    CaseError,
    all_cases,
    case_docs,
    get_case,
    lint_case,
    mismatches,
)
from tools.lint.config import Config
from tools.lint.engine import lint
from tools.lint.finding import Severity
from tools.lint.inputs import read_manifests
from tools.lint.rules import REGISTRY, RULES

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "lint-rules.md"
CASES = all_cases()
TOOLS = ("kube-linter", "Polaris", "kube-score", "checkov")


def _shown(findings: list) -> list[str]:
    return [f"{f.rule} {f.object_ref} [{f.container}] {f.path}: {f.message}" for f in findings]


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "pass"], ids=lambda c: c.id)
def test_passing_case_has_no_finding_of_its_rule_and_only_the_stated_others(case: Case) -> None:
    found = lint_case(case)
    assert mismatches(case, found) == [], _shown(found)


@pytest.mark.parametrize("case", [c for c in CASES if c.outcome == "fail"], ids=lambda c: c.id)
def test_failing_case_reports_exactly_the_stated_rule_object_container_and_path(case: Case) -> None:
    found = lint_case(case)
    assert mismatches(case, found) == [], _shown(found)
    for f in found:
        assert f.message and f.remediation == REGISTRY[f.rule].REMEDIATION


def test_a_case_that_fails_for_another_reason_does_not_match() -> None:
    """The harness itself: another path, another object, another rule or another message is a mismatch."""
    case = get_case("no-privileged", "privileged")
    (stated,) = case.expect
    found = lint_case(case)
    assert mismatches(case, found) == []
    for wrong in (replace(stated, path=stated.path.replace("privileged", "runAsUser")),
                  replace(stated, object="Deployment/nova-services/other"),
                  replace(stated, container=None),
                  replace(stated, rule="no-host-port"),
                  replace(stated, message="is not privileged")):
        assert mismatches(replace(case, expect=(wrong,)), found), wrong
    extra = replace(case, steps=(*case.steps, {"in": "Deployment/nova-services/api",
                                               "set": "spec.template.spec.hostPID", "value": True}))
    assert any("unexpected ('no-host-namespaces'" in m for m in mismatches(extra, lint_case(extra)))
    assert mismatches(replace(case, outcome="pass"), found)


def test_the_baseline_is_clean_under_every_rule_on_both_default_versions() -> None:
    objects = read_manifests(str(BASELINE))
    assert len(objects) == 6
    assert _shown(lint(objects, Config(), ["1.29", "1.37"])) == []


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    for rule_id in REGISTRY:
        outcomes = {c.outcome for c in CASES if c.rule == rule_id}
        assert outcomes == {"pass", "fail"}, f"{rule_id}: tests/lint/fixtures/{rule_id}.yaml needs pass and fail cases"


def test_every_cases_file_belongs_to_a_registered_rule() -> None:
    assert {p.stem for p in FIXTURES.glob("*.yaml")} - {BASELINE.stem} <= set(REGISTRY)


def test_case_names_are_unique() -> None:
    ids = Counter(c.id for c in CASES)
    assert [i for i, n in ids.items() if n > 1] == []


def test_a_patch_step_that_does_not_apply_is_an_error_naming_the_case(tmp_path: Path) -> None:
    bad = Case("no-privileged", "fail", "typo", "a path that is not in the baseline",
               ({"in": "Deployment/nova-services/api", "delete": "spec.template.spec.containerz[0]"},), ())
    with pytest.raises(CaseError, match=r"no-privileged/fail/typo: patch\[0\]: spec.template.spec.containerz: no such"):
        case_docs(bad)
    other = Case("no-privileged", "fail", "gone", "an object that is not there",
                 ({"in": "Deployment/nova-services/nope", "set": "spec.replicas", "value": 2},), ())
    with pytest.raises(CaseError, match="object 'Deployment/nova-services/nope' is not in the baseline"):
        case_docs(other)


def test_the_baseline_documents_are_untouched_by_patches() -> None:
    before = list(yaml.safe_load_all(BASELINE.read_text()))
    for case in CASES:
        case_docs(case)
    assert list(yaml.safe_load_all(BASELINE.read_text())) == before


def _section(rule_id: str) -> str:
    match = re.search(rf"^## {re.escape(rule_id)}\n(.*?)(?=^## |\Z)", DOCS.read_text(), re.DOTALL | re.MULTILINE)
    assert match, f"docs/lint-rules.md has no '## {rule_id}' section (run: python -m tools.lint.docs)"
    return match.group(1)


def test_every_rule_has_a_docs_section_with_its_metadata_and_equivalents() -> None:
    for rule in RULES:
        section = _section(rule.ID)
        assert rule.DESCRIPTION in section and rule.REMEDIATION in section, f"{rule.ID}: docs section is stale"
        for tool in TOOLS:
            assert tool in section and rule.EQUIVALENTS[tool] in section, f"{rule.ID}: no {tool} equivalent in docs"


def test_every_rule_module_declares_its_metadata_and_examples() -> None:
    assert len(REGISTRY) == len(RULES), "two rule modules share an ID"
    for rule in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.ID), rule.ID
        assert isinstance(rule.SEVERITY, Severity)
        assert rule.DESCRIPTION.strip() and rule.REMEDIATION.strip()
        assert isinstance(rule.OPTIONS, dict)
        assert sorted(rule.EQUIVALENTS) == sorted(TOOLS) and all(v.strip() for v in rule.EQUIVALENTS.values()), rule.ID
        doc = rule.__doc__ or ""
        assert "Passing" in doc and "Failing" in doc, f"{rule.ID}: docstring needs a passing and a failing example"
        assert inspect.isgeneratorfunction(rule.check), f"{rule.ID}: check() must be a generator"


def _nova_service_names() -> set[str]:
    values = yaml.safe_load((REPO / "charts" / "nova" / "values.yaml").read_text())
    return set(values["services"]["microservices"])


def test_no_rule_default_names_a_nova_service() -> None:
    """The linter is general: what is Nova-specific lives in .nova-lint.yaml, not in rule defaults."""
    names = _nova_service_names()
    assert "user-service" in names
    for rule in RULES:
        defaults = repr(rule.OPTIONS)
        assert not [n for n in names if n in defaults], f"{rule.ID}: a default names a Nova service"


def test_the_repository_config_lists_the_nova_services_for_resilience_policy() -> None:
    config = yaml.safe_load((REPO / ".nova-lint.yaml").read_text())
    assert set(config["rules"]["resilience-policy"]["services"]) == _nova_service_names()
