"""Every rule against its fixtures, and the meta-test that every rule has fixtures, docs and metadata."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tests.lint.conftest import FIXTURES, expected_count
from tools.lint.config import Config
from tools.lint.engine import lint
from tools.lint.finding import Severity
from tools.lint.inputs import read_manifests
from tools.lint.rules import REGISTRY, RULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lint-rules.md"
FIXTURE_FILES = sorted(FIXTURES.glob("*/*.yaml"))


def _rule_findings(path: Path, rule_id: str) -> list:
    return [f for f in lint(read_manifests(str(path)), Config(), ["1.29"]) if f.rule == rule_id]


@pytest.mark.parametrize("path", [p for p in FIXTURE_FILES if p.name.startswith("pass")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_passing_fixture_has_no_finding_of_its_rule(path: Path) -> None:
    found = _rule_findings(path, path.parent.name)
    assert found == [], [f"{f.path}: {f.message}" for f in found]


@pytest.mark.parametrize("path", [p for p in FIXTURE_FILES if p.name.startswith("fail")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_failing_fixture_has_exactly_the_expected_findings_of_its_rule(path: Path) -> None:
    expected = expected_count(path)
    assert expected, f"{path}: first line must say '# expect: N' (N > 0)"
    found = _rule_findings(path, path.parent.name)
    assert len(found) == expected, [f"{f.path}: {f.message}" for f in found]
    for f in found:
        assert f.path and f.message and f.remediation and f.kind and f.name


def test_the_compliant_baseline_is_clean_under_every_rule() -> None:
    """The pass.yaml baseline (a full service) gives no finding of any rule, on both default versions."""
    objects = read_manifests(str(FIXTURES / "run-as-non-root" / "pass.yaml"))
    assert lint(objects, Config(), ["1.29", "1.37"]) == []


def test_every_rule_has_passing_and_failing_fixtures() -> None:
    for rule_id in REGISTRY:
        folder = FIXTURES / rule_id
        assert list(folder.glob("pass*.yaml")), f"{rule_id}: no {folder}/pass*.yaml"
        assert list(folder.glob("fail*.yaml")), f"{rule_id}: no {folder}/fail*.yaml"


def test_every_fixture_folder_belongs_to_a_registered_rule() -> None:
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir()} <= set(REGISTRY)


def test_every_rule_has_a_docs_section_with_equivalents() -> None:
    text = DOCS.read_text()
    for rule_id in REGISTRY:
        match = re.search(rf"^## {re.escape(rule_id)}\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
        assert match, f"docs/lint-rules.md has no '## {rule_id}' section"
        section = match.group(1)
        assert rule_id_description(rule_id) in section, f"{rule_id}: docs section is stale (description differs)"
        for tool in ("kube-linter", "Polaris", "kube-score", "checkov"):
            assert tool in section, f"{rule_id}: docs section does not name the {tool} equivalent"


def rule_id_description(rule_id: str) -> str:
    return REGISTRY[rule_id].DESCRIPTION


def test_every_rule_module_declares_its_metadata_and_examples() -> None:
    assert len(REGISTRY) == len(RULES), "two rule modules share an ID"
    for rule in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.ID), rule.ID
        assert isinstance(rule.SEVERITY, Severity)
        assert rule.DESCRIPTION.strip() and rule.REMEDIATION.strip()
        assert isinstance(rule.OPTIONS, dict)
        doc = rule.__doc__ or ""
        assert "Passing" in doc and "Failing" in doc, f"{rule.ID}: docstring needs a passing and a failing example"
        assert inspect.isgeneratorfunction(rule.check), f"{rule.ID}: check() must be a generator"
