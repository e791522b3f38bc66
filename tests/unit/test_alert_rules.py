"""The alert rules of the three charts, as values/production.yaml renders them, through promtool.

One render of the umbrella (every chart's PrometheusRule), one `promtool check rules` and one `promtool test
rules` over tests/alerts/*.yaml. Every alert must have a promtool case in which it fires and one in which it
stays silent; annotations are dropped from the rules the tests load (promtool compares them verbatim), so the
tests pin expressions, `for` and labels, and `check rules` still parses the annotation templates.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import charts as chart_files
from tools import helm

ROOT = helm.REPO_ROOT
TESTS = ROOT / "tests" / "alerts"
RUNBOOKS = ROOT / "docs" / "runbooks"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
BACKUP_METRIC = "kube_cronjob_status_last_successful_time"  # values/production.yaml's, with its cronjob selector
# chart directory -> the tests/alerts files of its rules (together they must test every alert of the chart)
FILES = {"nova": ["services.yaml"], "nova-redis": ["redis.yaml"], "nova-postgres": ["postgres.yaml", "postgres-backup.yaml", "postgres-pooler.yaml"]}

pytestmark = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed (set-up installs Debian's prometheus)")


def render_rules() -> dict[str, list[dict[str, Any]]]:
    """chart name -> rule groups of its PrometheusRule, from one render of the production profile."""
    objs = helm.render(helm.CHARTS_DIR / "nova", values=chart_files.profile_values("production"),
                       release="nova", namespace="nova-services")
    rules = {}
    for o in objs:
        if o.kind == "PrometheusRule":
            rules[o.obj["metadata"]["labels"]["helm.sh/chart"].rsplit("-", 1)[0]] = o.obj["spec"]["groups"]
    return rules


@pytest.fixture(scope="module")
def groups() -> dict[str, list[dict[str, Any]]]:
    return render_rules()


def alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for g in groups for r in g["rules"] if "alert" in r]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_every_chart_renders_its_rules(groups: dict[str, list[dict[str, Any]]]) -> None:
    assert set(groups) == set(FILES)
    names = [a["alert"] for g in groups.values() for a in alerts(g)]
    assert len(names) == len(set(names)), "alert names must be unique across the charts"
    assert len(names) >= 25


def test_rendered_rules_pass_promtool_check(groups: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    files = []
    for chart, g in groups.items():
        (tmp_path / f"{chart}.yaml").write_text(yaml.safe_dump({"groups": g}))
        files.append(f"{chart}.yaml")
    result = promtool("check", "rules", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_runbook_and_summary(groups: dict[str, list[dict[str, Any]]]) -> None:
    for chart, g in groups.items():
        for a in alerts(g):
            assert a["labels"]["severity"] in {"critical", "warning"}, a["alert"]
            assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]
            url = a["annotations"]["runbook_url"]
            assert url == f"https://github.com/nova/charts/blob/main/docs/runbooks/{a['alert']}.md", url
            assert (RUNBOOKS / f"{a['alert']}.md").is_file(), f"{chart}: no runbook docs/runbooks/{a['alert']}.md"


def cases(test_file: dict[str, Any]) -> dict[str, set[bool]]:
    """alert name -> {True if some case expects it firing, False if some case expects it silent}."""
    seen: dict[str, set[bool]] = {}
    for t in test_file["tests"]:
        for c in t.get("alert_rule_test", []):
            seen.setdefault(c["alertname"], set()).add(bool(c.get("exp_alerts")))
    return seen


def test_every_alert_fires_and_stays_silent_in_promtool_tests(groups: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    files = []
    assert sorted(p.name for p in TESTS.glob("*.yaml")) == sorted(n for names in FILES.values() for n in names)
    for chart, names in FILES.items():
        stripped = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
                    for g in groups[chart]]
        (tmp_path / f"rules-{chart}.yaml").write_text(yaml.safe_dump({"groups": stripped}))
        seen: dict[str, set[bool]] = {}
        for name in names:
            test = yaml.safe_load((TESTS / name).read_text())
            assert test["rule_files"] == ["RENDERED"], f"{name}: rule_files is filled in by this test"
            test["rule_files"] = [f"rules-{chart}.yaml"]
            for alert, kinds in cases(test).items():
                seen.setdefault(alert, set()).update(kinds)
            (tmp_path / name).write_text(yaml.safe_dump(test))
            files.append(name)
        expected = {a["alert"] for a in alerts(groups[chart])}
        assert set(seen) == expected, f"{chart}: tests for {sorted(set(seen) - expected)}, none for {sorted(expected - set(seen))}"
        incomplete = sorted(a for a, kinds in seen.items() if kinds != {True, False})
        assert not incomplete, f"{chart}: these alerts need a case that fires and one that stays silent: {incomplete}"
    result = promtool("test", "rules", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
