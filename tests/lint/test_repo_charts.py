"""Our own charts lint clean: every chart, default values and every profile, both Kubernetes versions."""

from __future__ import annotations

import json

import pytest

from tests.lint.conftest import run_lint
from tools import helm


def test_every_chart_and_profile_lints_clean_with_the_repository_config(monkeypatch: pytest.MonkeyPatch) -> None:
    if not helm.charts():
        pytest.skip("no chart under charts/")
    monkeypatch.chdir(helm.REPO_ROOT)  # picks up .nova-lint.yaml
    result = run_lint(["--format", "json"])
    findings = json.loads(result.out)["findings"] if result.out.strip() else []
    shown = [f"{f['input']}: {f['rule']} {f['kind']}/{f['namespace']}/{f['name']} {f['path']}: {f['message']}"
             for f in findings]
    assert result.err == "", result.err
    assert result.code == 0, "\n".join(shown)
