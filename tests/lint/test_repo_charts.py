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


def test_resilience_policy_catches_a_too_long_timeout_in_the_nova_chart() -> None:
    chart = helm.CHARTS_DIR / "nova"
    if not (chart / "Chart.yaml").is_file():
        pytest.skip("charts/nova is not there yet")
    result = run_lint(["--chart", str(chart), "-f", str(helm.VALUES_DIR / "local.yaml"),
                       "--set", "services.defaults.resilience.httpRequestTimeout=10s",
                       "--no-config", "--kube-version", "1.29", "--format", "json"])
    assert result.err == "", result.err
    hits = [f for f in json.loads(result.out)["findings"] if f["rule"] == "resilience-policy"]
    services = {f["container"] for f in hits}
    assert services == {"user-service", "auth-service", "search-service", "streaming-api", "messaging-service"}
    assert all("HTTP_REQUEST_TIMEOUT=10s" in f["message"] and f["template"].endswith("deployment.yaml")
               for f in hits)
