"""docs/lint-rules.md is generated from the rule modules (python -m tools.lint.docs) and kept fresh."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
import yaml

from tools.lint import docs
from tools.lint.finding import Severity
from tools.lint.rules import RULES

REPO = Path(__file__).resolve().parents[2]


def test_committed_page_is_what_the_generator_writes() -> None:
    assert docs.PAGE.read_text() == docs.render(), "docs/lint-rules.md is stale: run python -m tools.lint.docs"
    assert docs.main(["--check"]) == docs.EXIT_OK


def test_check_reports_a_stale_page_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "lint-rules.md"
    page.write_text(docs.render().replace("**Severity**: error", "**Severity**: warning", 1))
    before = page.read_text()
    assert docs.main(["--check", "-o", str(page)]) == docs.EXIT_STALE
    captured = capsys.readouterr()
    assert page.read_text() == before
    assert "-**Severity**: warning" in captured.out and "+**Severity**: error" in captured.out
    assert captured.err.strip() == f"{page}: stale; run `python -m tools.lint.docs` and commit the result"
    assert docs.main(["-o", str(page)]) == docs.EXIT_OK
    assert page.read_text() == docs.render() and docs.main(["--check", "-o", str(page)]) == docs.EXIT_OK


def _fake_rule(doc: str) -> types.ModuleType:
    rule = types.ModuleType("fake")
    rule.__doc__ = doc
    rule.ID, rule.SEVERITY, rule.OPTIONS = "fake-rule", Severity.WARNING, {"limit": 3, "names": ["a"]}
    rule.DESCRIPTION, rule.REMEDIATION = "Every fake is fine.", "Make it fine."
    rule.EQUIVALENTS = {"kube-linter": "`k`", "Polaris": "`p`", "kube-score": "—", "checkov": "CKV_X"}
    return rule


def test_a_section_is_built_from_the_module_metadata_and_docstring() -> None:
    rule = _fake_rule("Summary line\ncontinued.\n\nDetails with ``code``.\n\nPassing::\n\n    a: 1\n\n"
                      "Failing (as info)::\n\n    a: 2\n")
    section = docs.rule_section(rule)
    assert section.splitlines()[:7] == [
        "## fake-rule", "", "**Severity**: warning. **Settings**: `limit` (default `3`), `names` (default `['a']`).",
        "", "Every fake is fine.", "", "**Fix**: Make it fine."]
    assert "Summary" not in section and "continued." not in section
    assert "Details with `code`.\n\nPassing:\n\n    a: 1\n\nFailing (as info):\n\n    a: 2\n" in section
    assert "| `k` | `p` | — | CKV_X |" in section


def test_a_docstring_with_an_example_title_but_no_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="fake-rule: docstring example 'Failing' has no indented block"):
        docs.docstring_parts(_fake_rule("Summary.\n\nPassing::\n\n    a: 1\n\nFailing::\n"))


def test_every_rule_docstring_has_its_examples_on_the_page() -> None:
    page = docs.PAGE.read_text()
    for rule in RULES:
        _, examples = docs.docstring_parts(rule)
        titles = [t for t, _ in examples]
        assert titles[0] == "Passing" and titles[-1].startswith("Failing"), rule.ID
        assert all(block in page for _, block in examples), rule.ID


def _has_key(values: dict, dotted: str) -> bool:
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_values_keys_the_page_sets_exist_in_the_nova_chart() -> None:
    keys = re.findall(r"--set ([\w.-]+)=", docs.PAGE.read_text())
    assert "services.microservices.user-service.replicas" in keys
    values = yaml.safe_load((REPO / "charts" / "nova" / "values.yaml").read_text())
    assert [k for k in keys if not _has_key(values, k)] == []
