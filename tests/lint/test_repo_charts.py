"""Our own charts lint clean: every chart, default values and every profile, both Kubernetes versions."""

from __future__ import annotations

import json

import pytest

from tests.conftest import render_cache
from tests.lint.conftest import run_lint
from tools import charts as chart_files
from tools import helm, kube_versions
from tools.lint.config import load_config
from tools.lint.finding import Severity
from tools.lint.rules import cpu_limit


def test_every_chart_and_profile_lints_clean_for_every_supported_version_with_the_repository_config(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m tools.lint` at the repository root (what `make lint` runs): every chart with its default
    values and every profile, rendered and checked for each supported Kubernetes version, and clean."""
    assert {c.name for c in chart_files.discover()} >= {"nova", "nova-redis", "nova-postgres"}
    monkeypatch.chdir(helm.REPO_ROOT)  # picks up .nova-lint.yaml
    if render_cache():  # the doc-test's `python -m tools.lint` runs of a fresh clone render the same bytes
        monkeypatch.setenv(helm.CACHE_ENV, render_cache())
    result = run_lint(["--format", "json"])
    report = json.loads(result.out) if result.out.strip() else {}
    shown = [f"{f['input']}: {f['rule']} {f['kind']}/{f['namespace']}/{f['name']} {f['path']}: {f['message']}"
             for f in report.get("findings", [])]
    assert result.err == "", result.err
    assert result.code == 0, "\n".join(shown)
    checked = report["checked"]
    value_sets = sum(1 + len(chart_files.profiles(c)) for c in chart_files.discover())
    assert (checked["charts"], checked["valueSets"]) == (len(chart_files.discover()), value_sets)
    assert checked["kubeVersions"] == list(kube_versions.supported())
    assert checked["renders"] == value_sets * len(kube_versions.supported()) and checked["objects"] > 500


def test_resilience_policy_catches_a_too_long_timeout_in_the_nova_chart() -> None:
    chart = helm.CHARTS_DIR / "nova"
    result = run_lint(["--chart", str(chart), "-f", str(helm.VALUES_DIR / "local.yaml"),
                       "--set", "services.defaults.resilience.httpRequestTimeout=10s",
                       "--no-config", "--kube-version", "1.29", "--format", "json"])
    assert result.err == "", result.err
    hits = [f for f in json.loads(result.out)["findings"] if f["rule"] == "resilience-policy"]
    services = {f["container"] for f in hits}
    assert services == {"user-service", "auth-service", "search-service", "streaming-api", "messaging-service"}
    assert all("HTTP_REQUEST_TIMEOUT=10s" in f["message"] and f["template"].endswith("deployment.yaml")
               for f in hits)


def test_repository_config_turns_cpu_limit_into_an_error() -> None:
    """The tool's default is info (CPU limits are a design choice); this repository's design asks for them."""
    config = load_config(helm.REPO_ROOT / ".nova-lint.yaml")
    assert cpu_limit.SEVERITY == Severity.INFO
    assert config.severity(cpu_limit) == Severity.ERROR
    assert not any(s.rule == "cpu-limit" for s in config.suppressions)
