"""The diagnosis commands of docs/runbooks/*.md name objects that values/production.yaml really renders.

Every `kubectl` command of a runbook (in code blocks and inline code) is read for its namespace (`-n`), the
pod or workload it execs into, reads logs of or port-forwards to (and the container `-c`), the label selectors
(`-l`), and the Secret and key of `get secret NAME -o jsonpath='{.data.KEY}'`; prose of the form Secret `NAME`
key `KEY` is checked the same way. One render of the umbrella; `<service>` is read as each of the five services
in turn, other placeholders (`<primary-pod>`) are skipped, and shell loops over `$i` are read as ordinal 0.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

ROOT = helm.REPO_ROOT
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("Nova*.md"))
SECRET_PROSE = re.compile(r"Secret `([^`]+)`,? keys? `([^`]+)`(?:[^.]*?\(namespace `([^`]+)`\))?")


def commands(text: str) -> list[str]:
    """Every kubectl command line of a page: lines of code blocks and inline code spans."""
    lines: list[str] = []
    in_block = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            lines.append(line)
        else:
            lines += re.findall(r"`([^`]*kubectl[^`]*)`", line)
    found = []
    for line in lines:
        for part in re.split(r"\||;|&&|\bdo\b|\$\(", line):
            part = part.split("#", 1)[0].strip().rstrip("&").strip()
            if part.startswith("kubectl "):
                found.append(part.replace("$i", "0"))
    return found


@pytest.fixture(scope="module")
def production() -> list[KubeObject]:
    return render(helm.CHARTS_DIR / "nova", chart_files.profile_values("production"), namespace="nova-services")


class Cluster:
    """What a kubectl command may name in the production render."""

    def __init__(self, objs: list[KubeObject]) -> None:
        self.namespaces = {o.obj["metadata"].get("namespace") for o in objs} - {None}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}  # (ns, pod or kind/name) -> pod spec + labels
        self.objects = {(o.obj["metadata"].get("namespace"), o.kind.lower(), o.name) for o in objs}
        self.secrets = {(o.obj["metadata"]["namespace"], o.name): set((o.obj.get("data") or {}) | (o.obj.get("stringData") or {}))
                        for o in objs if o.kind == "Secret"}
        for o in objs:
            ns = o.obj["metadata"].get("namespace")
            if o.kind == "StatefulSet":
                for i in range(int(o.obj["spec"].get("replicas", 1))):
                    self.pods[(ns, f"{o.name}-{i}")] = o.obj["spec"]["template"]
                self.pods[(ns, f"statefulset/{o.name}")] = self.pods[(ns, f"sts/{o.name}")] = o.obj["spec"]["template"]
            elif o.kind == "Deployment":
                self.pods[(ns, f"deploy/{o.name}")] = self.pods[(ns, f"deployment/{o.name}")] = o.obj["spec"]["template"]

    def labelled(self, ns: str, selector: str) -> bool:
        wanted = dict(kv.split("=", 1) for kv in selector.split(","))
        return any(all(t["metadata"]["labels"].get(k) == v for k, v in wanted.items())
                   for (pns, _), t in self.pods.items() if pns == ns)


def check(cluster: Cluster, command: str) -> list[str]:
    """Problems of one kubectl command (empty when everything it names exists)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    problems = []
    ns = None
    rest: list[str] = []
    container = None
    i = 1
    while i < len(words):
        w = words[i]
        if w in ("-n", "--namespace"):
            ns = words[i + 1]
            i += 2
            continue
        if w in ("-c", "--container"):
            container = words[i + 1]
            i += 2
            continue
        if w in ("-l", "--selector"):
            if ns and not cluster.labelled(ns, words[i + 1]):
                problems.append(f"no pod in {ns} has the labels {words[i + 1]}")
            i += 2
            continue
        if w == "--":
            break
        rest.append(w)
        i += 1
    if ns is None:
        return problems  # cluster-wide or not a namespaced read (e.g. kubectl create job ... without -n)
    if ns not in cluster.namespaces:
        return [f"namespace {ns} is not rendered"]
    verb = rest[0] if rest else ""
    if verb in ("exec", "logs", "port-forward") and len(rest) > 1 and not rest[1].startswith("<"):
        target = rest[1]
        if target.startswith(("job/", "cronjob/")):
            return problems
        pod = cluster.pods.get((ns, target))
        if pod is None:
            problems.append(f"no pod or workload {target} in {ns}")
        elif container and container not in {c["name"] for c in pod["spec"]["containers"]}:
            problems.append(f"{target} has no container {container}")
        elif verb == "port-forward" and pod is not None:
            ports = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
            for mapping in rest[2:]:
                remote = int(mapping.rsplit(":", 1)[-1])
                if remote not in ports:
                    problems.append(f"{target} has no container port {remote}")
    if verb == "get" and len(rest) > 2 and rest[1] in ("secret", "secrets"):
        name = rest[2]
        keys = cluster.secrets.get((ns, name))
        if keys is None:
            problems.append(f"no Secret {name} in {ns}")
        else:
            for key in re.findall(r"\{\.data\.([^}]+)\}", command):
                if key.replace("\\.", ".") not in keys:
                    problems.append(f"Secret {ns}/{name} has no key {key}")
    if verb == "rollout" and len(rest) > 2 and (ns, rest[2]) not in cluster.pods:
        problems.append(f"no workload {rest[2]} in {ns}")
    return problems


def test_the_checker_catches_wrong_names(production: list[KubeObject]) -> None:
    cluster = Cluster(production)
    assert check(cluster, "kubectl -n nova-redis exec redis-0 -c redis -- redis-cli INFO") == []
    assert check(cluster, "kubectl -n nova-db exec postgres-0 -c postgres -- true") == ["namespace nova-db is not rendered"]
    assert check(cluster, "kubectl -n nova-database exec postgres-3 -c postgres -- true") == ["no pod or workload postgres-3 in nova-database"]
    assert check(cluster, "kubectl -n nova-database exec postgres-0 -c patroni -- true") == ["postgres-0 has no container patroni"]
    assert check(cluster, "kubectl -n nova-redis get secret nova-redis-credentials -o jsonpath='{.data.password}'") == [
        "Secret nova-redis/nova-redis-credentials has no key password"]
    assert check(cluster, "kubectl -n nova-database get pods -l app.kubernetes.io/component=pooler") == [
        "no pod in nova-database has the labels app.kubernetes.io/component=pooler"]
    assert commands("x `kubectl -n a get pods | head` y\n```sh\nfor i in 0 1; do kubectl -n b exec r-$i -c c -- x; done\n```\n") == [
        "kubectl -n a get pods", "kubectl -n b exec r-0 -c c -- x"]


@pytest.mark.parametrize("page", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_runbook_commands_name_rendered_namespaces_pods_and_secret_keys(page: Path, production: list[KubeObject]) -> None:
    cluster = Cluster(production)
    text = page.read_text()
    found = commands(text)
    assert found, f"{page.name}: no kubectl command to diagnose with"
    services = sorted(o.name.removeprefix("nova-") for o in production
                      if o.kind == "Deployment" and o.obj["metadata"]["namespace"] == "nova-services")
    assert len(services) == 5
    problems = [f"{c}: {p}" for c in found for service in services
                for p in check(cluster, c.replace("<service>", service))]
    for name, key, ns in SECRET_PROSE.findall(text):
        where = [n for (n, s) in cluster.secrets if s == name and (not ns or n == ns)]
        if not where:
            problems.append(f"Secret {name} (namespace {ns or 'any'}) is not rendered")
        elif key not in cluster.secrets[(where[0], name)]:
            problems.append(f"Secret {name} has no key {key}")
    assert not problems, f"{page.name}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def severities() -> dict[str, str]:
    """alert -> severity, as the production profile renders them (its backup metric renders the backup alert)."""
    objs = render(helm.CHARTS_DIR / "nova", chart_files.profile_values("production"), namespace="nova-services")  # production sets the backup metric
    return {r["alert"]: r["labels"]["severity"] for o in objs if o.kind == "PrometheusRule"
            for g in o.obj["spec"]["groups"] for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("page", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_runbook_says_meaning_causes_diagnosis_and_fix_and_the_alerts_severity(page: Path, severities: dict[str, str]) -> None:
    """Issue 13: each runbook says what it means, the likely causes, the commands to diagnose, and the fix; its
    severity line is the production alert's (and every production alert has a page: test_alert_rules.py)."""
    text = page.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == ["Meaning", "Likely causes", "Diagnosis", "Fix"], f"{page.name}: {headings}"
    assert text.startswith(f"# {page.stem}\n")
    severity = re.search(r"^Severity: \*\*(critical|warning)\*\*", text, flags=re.MULTILINE)
    assert severity, f"{page.name}: no Severity line"
    assert page.stem in severities, f"{page.name}: no such alert in the production rules"
    assert severity.group(1) == severities[page.stem], f"{page.name}: Severity {severity.group(1)}, the rule says {severities[page.stem]}"


def test_the_runbook_index_lists_every_page_with_its_severity(severities: dict[str, str]) -> None:
    index = (ROOT / "docs" / "runbooks" / "README.md").read_text()
    listed = dict(re.findall(r"^- \[(Nova\w+)\]\(\1\.md\) \((critical|warning)\)$", index, flags=re.MULTILINE))
    assert set(listed) == {p.stem for p in RUNBOOKS}
    assert {a: severities[a] for a in listed} == listed
