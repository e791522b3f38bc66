"""The docs are true: every shell command in README.md, docs/*.md, the chart READMEs and the header comments
of values/*.yaml runs, exactly as written, on a fresh clone (or is listed below as needing a cluster, and
why); every values key they name (in `--set key=value` or as a dotted path) is in the chart's schema; every
path they name exists; the versions and claims they state match the code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import render_cache
from tests.unit.freshclone import ROOT, fresh_clone
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "charts").glob("*/README.md")])
VALUES_PROFILES = sorted((ROOT / "values").glob("*.yaml"))
SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
# A fenced block without a language that starts with one of these is probably a command: label it.
COMMAND_WORDS = re.compile(r"^\s*(\$ )?(helm|make|kubectl|kind|python|\.venv/bin/|minikube|git|curl)\b")

CLUSTER = "needs a Kubernetes cluster"
KIND = "needs docker and kind (creates or deletes the Kind cluster)"
MINIKUBE = "needs minikube (a VM or docker)"
RECURSIVE = "runs the test suite this test is part of"
REGISTRY = ("needs the charts published to ghcr.io; tests/unit/test_oci.py runs the same path against a real "
            "registry on loopback")
BENCH = "a benchmark: starts daemons or runs checkov for minutes (tests/unit/test_bench_cli.py runs the scripts)"

# Commands the doc-test does not run, each with the reason; every other command is run. A new command in
# the docs is either run or consciously listed here; a listed command that left the docs fails the test.
NOT_RUN: dict[str, str] = {
    # README.md
    "make test": RECURSIVE,
    'python -m pytest -m "not runtime"': RECURSIVE,
    "make up": KIND,
    "helm install nova charts/nova -f values/local.yaml -n nova --create-namespace": CLUSTER,
    "python -m tools.cluster status": CLUSTER,
    "python -m tools.cluster test": CLUSTER,
    ".venv/bin/python bench/failover.py redis": BENCH,
    ".venv/bin/python bench/failover.py postgres": BENCH,
    ".venv/bin/python bench/schema.py": BENCH,
    ".venv/bin/python bench/lint.py": BENCH,
    ".venv/bin/python bench/faults.py --runs 3": BENCH,
    "helm show chart oci://ghcr.io/nova/charts/nova": REGISTRY,
    "helm install nova oci://ghcr.io/nova/charts/nova -f values/local.yaml -n nova --create-namespace": REGISTRY,
    "helm upgrade nova oci://ghcr.io/nova/charts/nova -f values/local.yaml -n nova": REGISTRY,
    # docs/deployment-guide.md
    "kubectl get nodes -L topology.kubernetes.io/zone": CLUSTER,
    "minikube start -p nova --nodes 4 --cpus 2 --memory 3g --disk-size 30g": MINIKUBE,
    "minikube -p nova addons enable volumesnapshots": MINIKUBE,
    "minikube -p nova addons enable csi-hostpath-driver": MINIKUBE,
    "kubectl patch storageclass csi-hostpath-sc -p "
    "'{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}'": CLUSTER,
    "kubectl patch storageclass standard -p "
    "'{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"false\"}}}'": CLUSTER,
    "for n in 2 3 4; do kubectl label node nova-m0$n topology.kubernetes.io/zone=zone-$n; done": CLUSTER,
    "python -m tools.cluster deploy --context nova": CLUSTER,
    "make deploy": CLUSTER,
    "make down": KIND,
    ".venv/bin/helm upgrade --install nova charts/nova -n nova --create-namespace -f values/local.yaml "
    "--timeout 15m": CLUSTER,
    "kubectl -n nova rollout status statefulset/nova-redis": CLUSTER,
    "kubectl -n nova rollout status deployment/nova-redis-master": CLUSTER,
    "kubectl -n nova rollout status statefulset/nova-postgres-etcd": CLUSTER,
    "kubectl -n nova rollout status statefulset/nova-postgres": CLUSTER,
    "kubectl -n nova rollout status deployment/nova-user-service": CLUSTER,
    "kubectl -n nova get statefulsets,deployments,pdb": CLUSTER,
    "kubectl -n nova exec nova-redis-0 -c sentinel -- redis-cli -p 26379 SENTINEL get-master-addr-by-name nova":
        CLUSTER,
    "kubectl -n nova exec nova-redis-0 -c sentinel -- redis-cli -p 26379 SENTINEL ckquorum nova": CLUSTER,
    "for i in 0 1 2; do kubectl -n nova exec nova-redis-$i -c redis -- redis-cli ROLE | head -1; done": CLUSTER,
    "kubectl -n nova exec nova-redis-0 -c redis -- redis-cli CONFIG GET appendonly": CLUSTER,
    "kubectl -n nova delete pod <master pod> --wait=false": CLUSTER,
    "kubectl -n nova exec nova-redis-1 -c sentinel -- redis-cli -p 26379 SENTINEL get-master-addr-by-name nova":
        CLUSTER,
    "kubectl -n nova get pods -l app.kubernetes.io/component=postgres -L nova-postgres/role": CLUSTER,
    "kubectl -n nova exec nova-postgres-0 -c postgres -- patronictl -c /etc/patroni/patroni.yml list": CLUSTER,
    "kubectl -n nova get endpointslices -l kubernetes.io/service-name=nova-postgres-primary": CLUSTER,
    "kubectl -n nova exec nova-postgres-etcd-0 -- /usr/local/bin/etcdctl endpoint health --cluster": CLUSTER,
    "kubectl -n nova delete pod <leader pod> --wait=false": CLUSTER,
    "kubectl -n nova get pods -l app.kubernetes.io/component=postgres -L nova-postgres/role -w": CLUSTER,
    "kubectl -n nova exec nova-postgres-0 -c postgres -- psql -U postgres -c '\\l' -c '\\du'": CLUSTER,
    "kubectl -n nova get secret nova-user-service -o jsonpath='{.data.DATABASE_USER}' | base64 -d; echo": CLUSTER,
    "kubectl get pdb -A": CLUSTER,
    "kubectl -n nova get pods -o wide -l app.kubernetes.io/instance=nova --sort-by=.spec.nodeName": CLUSTER,
    "kubectl -n nova exec deploy/nova-user-service -- env | grep -E '^(HTTP_|CIRCUIT_|RETRY_)'": CLUSTER,
    "kubectl -n nova get pods -o jsonpath='{range .items[*]}{.metadata.name}{\" \"}"
    "{.spec.securityContext.runAsNonRoot}{\"\\n\"}{end}'": CLUSTER,
    "kubectl -n nova get networkpolicies": CLUSTER,
    # docs/postgres.md (etcd NOSPACE recovery; tests/runtime/test_postgres_volumes.py runs the same etcdctl steps)
    "kubectl -n nova-database exec postgres-etcd-0 -- /usr/local/bin/etcdctl endpoint status -w json": CLUSTER,
    "kubectl -n nova-database exec postgres-etcd-0 -- /usr/local/bin/etcdctl compact <revision>": CLUSTER,
    "kubectl -n nova-database exec postgres-etcd-0 -- /usr/local/bin/etcdctl defrag": CLUSTER,
    "kubectl -n nova-database exec postgres-etcd-0 -- /usr/local/bin/etcdctl alarm disarm": CLUSTER,
    # docs/disaster-recovery.md (the runbook: every command needs the cluster it recovers)
    "kubectl -n nova-database get pods -l app.kubernetes.io/component=postgres -L nova-postgres/role": CLUSTER,
    "kubectl -n nova-database exec postgres-0 -c postgres -- patronictl -c /etc/patroni/patroni.yml list": CLUSTER,
    "kubectl -n nova-redis get pods -l app.kubernetes.io/component=redis -o wide": CLUSTER,
    "kubectl get nodes": CLUSTER,
    "kubectl taint nodes <node> node.kubernetes.io/out-of-service=nodeshutdown:NoExecute": CLUSTER,
    "kubectl -n nova-database delete pvc data-postgres-1 --wait=false": CLUSTER,
    "kubectl -n nova-database delete pod postgres-1": CLUSTER,
    "kubectl -n nova-redis delete pvc data-redis-1 --wait=false": CLUSTER,
    "kubectl -n nova-redis delete pod redis-1": CLUSTER,
    "kubectl -n nova-database scale statefulset postgres postgres-etcd --replicas=0": CLUSTER,
    "kubectl -n nova-database delete pvc -l app.kubernetes.io/instance=nova,app.kubernetes.io/component=etcd":
        CLUSTER,
    "kubectl -n nova-database delete pvc -l app.kubernetes.io/instance=nova,app.kubernetes.io/component=postgres":
        CLUSTER,
    "kubectl -n nova-redis scale statefulset redis --replicas=0": CLUSTER,
    "kubectl -n nova-redis delete pvc -l app.kubernetes.io/instance=nova,app.kubernetes.io/component=redis":
        CLUSTER,
    "kubectl create namespace nova-database": CLUSTER,
    "kubectl create namespace nova-redis": CLUSTER,
    "kubectl -n nova-database create secret generic nova-s3-backup --from-literal=access-key=<id> --from-literal=secret-key=<secret>":
        CLUSTER,
    "kubectl -n nova-redis create secret generic redis-backup-s3 --from-literal=access-key-id=<id> --from-literal=secret-access-key=<secret>":
        CLUSTER,
    "kubectl -n nova-database create job --from=cronjob/postgres-backup-full postgres-backup-now": CLUSTER,
    "kubectl -n nova-redis create job --from=cronjob/redis-backup redis-backup-now": CLUSTER,
    # docs/secrets.md
    "kubectl -n nova-redis    get secret nova-redis-credentials    -o jsonpath='{.data.redis-password}' | base64 -d":
        CLUSTER,
    "kubectl -n nova-database get secret nova-postgres-credentials -o jsonpath='{.data.user_service-password}' "
    "| base64 -d": CLUSTER,
    # docs/tls.md
    'kubectl -n nova-database exec postgres-0 -c postgres -- psql "host=postgres-primary sslmode=disable '
    'user=postgres" -c "select 1"': CLUSTER,
    'kubectl -n nova-database exec postgres-0 -c postgres -- psql "host=postgres-primary sslmode=verify-full '
    'sslrootcert=/etc/nova-tls/ca.crt user=postgres" -c "select ssl, version from pg_stat_ssl where pid = '
    'pg_backend_pid()"': CLUSTER,
    "kubectl -n nova-redis exec redis-0 -c redis -- redis-cli --tls --cacert /etc/nova-tls/ca.crt -h redis-master "
    "PING": CLUSTER,
    # chart READMEs
    "helm upgrade --install nova charts/nova-postgres -n nova-database --create-namespace "
    "-f charts/nova-postgres/ci/production-values.yaml": CLUSTER,
    "helm upgrade --install nova charts/nova-redis -n nova-redis --create-namespace "
    "-f charts/nova-redis/ci/production-values.yaml": CLUSTER,
    # charts/nova/README.md and the values/*.yaml headers. helm 3 asks the API server for its version even
    # for `install --dry-run=client`; tests/unit/test_helm.py runs that one with helm 4 on a fresh clone.
    "helm install nova charts/nova -f values/local.yaml": CLUSTER,
    "helm install nova charts/nova -n nova-services --create-namespace -f values/production.yaml "
    "-f values/examples/production-site.yaml": CLUSTER,
    "helm test nova": CLUSTER,
}
# What each reason's commands must look like, so a runnable command cannot hide in the list above.
REASON_SHAPES = {
    CLUSTER: re.compile(r"\bkubectl\b|\bhelm (install|upgrade|test)\b|tools\.cluster (status|test|deploy)|"
                        r"^make deploy$"),
    KIND: re.compile(r"^make (up|down)$"),
    MINIKUBE: re.compile(r"^minikube\b"),
    RECURSIVE: re.compile(r"^make test$|-m pytest\b"),
    BENCH: re.compile(r"^\.venv/bin/python bench/"),
    REGISTRY: re.compile(r"^helm (show chart|install|upgrade) \S+ oci://ghcr\.io/|^helm show chart oci://ghcr\.io/"),
}


@dataclass(frozen=True)
class Command:
    file: str  # relative to the repository root
    line: int
    text: str  # as written (continuation lines joined), trailing comment included

    @property
    def key(self) -> str:
        """The command without its trailing comment (what NOT_RUN lists)."""
        return strip_comment(self.text).strip()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}"


def strip_comment(line: str) -> str:
    """``line`` up to an unquoted ``#`` that starts a shell comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.DOTALL | re.MULTILINE)


def fenced_blocks(text: str) -> Iterator[tuple[int, str, str]]:
    """(line of the first body line, language, body with the fence's indentation removed)."""
    for m in FENCE.finditer(text):
        indent = len(m.group("indent"))
        body = "\n".join(ln[indent:] for ln in m.group("body").splitlines())
        yield text[: m.start("body")].count("\n") + 1, m.group("lang"), body


def block_commands(rel: str, first_line: int, body: str) -> Iterator[Command]:
    pending, start = "", 0
    for offset, raw in enumerate(body.splitlines()):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = first_line + offset
        if strip_comment(line).endswith("\\"):
            pending += strip_comment(line)[:-1].rstrip() + " "
            continue
        yield Command(rel, start, pending + line)
        pending = ""


def header_commands(path: Path) -> Iterator[Command]:
    """Commands in a values file's leading comment: lines indented under the ``#`` (``#   helm install ...``)."""
    rel = str(path.relative_to(ROOT))
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.startswith("#"):
            return
        m = re.match(r"^#\s{2,}(\S.*)$", line)
        if m:
            yield Command(rel, n, m.group(1))


def doc_commands() -> list[Command]:
    found: list[Command] = []
    for doc in DOCS:
        rel = str(doc.relative_to(ROOT))
        for line, lang, body in fenced_blocks(doc.read_text()):
            if lang in SHELL_LANGS:
                found += block_commands(rel, line, body)
    for profile in VALUES_PROFILES:
        found += header_commands(profile)
    return found


COMMANDS = doc_commands()
# Each distinct command once (README.md and docs/lint-rules.md both show `python -m tools.lint`).
_FIRST: dict[str, Command] = {}
for _c in COMMANDS:
    if _c.key not in NOT_RUN:
        _FIRST.setdefault(_c.key, _c)
TO_RUN = list(_FIRST.values())


def test_commands_are_found_in_every_kind_of_doc() -> None:
    files = {c.file for c in COMMANDS}
    assert {"README.md", "docs/deployment-guide.md", "charts/nova/README.md", "values/local.yaml",
            "values/production.yaml"} <= files
    assert len(TO_RUN) >= 8


def test_every_doc_command_is_run_or_listed_with_the_reason_it_needs_a_cluster() -> None:
    keys = {c.key for c in COMMANDS}
    gone = sorted(set(NOT_RUN) - keys)
    assert not gone, f"listed as not run but no longer in the docs: {gone}"
    wrong = [f"{cmd!r}: {reason}" for cmd, reason in NOT_RUN.items() if not REASON_SHAPES[reason].search(cmd)]
    assert not wrong, f"listed with a reason that does not fit the command: {wrong}"


def test_unlabelled_code_blocks_hold_no_commands() -> None:
    """A command in a fence without a language would escape the doc-test: label it `sh` (or `text`)."""
    unlabelled = [f"{doc.relative_to(ROOT)}:{line}" for doc in DOCS for line, lang, body in fenced_blocks(doc.read_text())
                  if not lang and COMMAND_WORDS.match(body)]
    assert not unlabelled


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_clone(tmp_path_factory.mktemp("docs"))


def _venv_is_set_up(clone: Path) -> None:
    """`make` targets run `make setup`, which pip-installs when the venv's stamp is not this pyproject's and
    replaces a helm binary whose sha256 is not the pinned one. The venv is shared: never let a test change it."""
    digest = hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = clone / ".venv" / f".deps-{digest}"
    pins = dict(re.findall(r'^(\w+)="([^"]*)"', (clone / "scripts/versions.env").read_text(), re.MULTILINE))
    helms = {"helm": pins.get("HELM4_SHA256"), "helm3": pins.get("HELM3_SHA256")}
    stale = [str(stamp)] if not stamp.exists() else []
    stale += [f".venv/bin/{name}" for name, want in helms.items()
              if hashlib.sha256((clone / ".venv/bin" / name).read_bytes()).hexdigest() != want]
    if stale:
        pytest.fail(f"the venv is not set up for this checkout ({', '.join(stale)}): run `make setup` first "
                    "(the doc-test never installs into .venv)", pytrace=False)


@pytest.mark.parametrize("command", TO_RUN, ids=str)
def test_doc_command_runs_as_written_on_a_fresh_clone(clone: Path, command: Command) -> None:
    if command.key.startswith("make "):
        _venv_is_set_up(clone)
    # Go's GC held off for the helm these commands run, as tools.helm runs it (the command is as written)
    env = {**helm.GO_RUNTIME, **os.environ, "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "KUBECONFIG": str(clone / "no-kubeconfig")}
    env.pop("VIRTUAL_ENV", None)
    cache = render_cache()
    if cache:  # the three full `tools.lint` runs render the same clone: helm runs once per distinct input
        env[helm.CACHE_ENV] = cache
    proc = subprocess.run(["sh", "-c", command.text], cwd=clone, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


HELM_INSTALL = re.compile(r"^(?P<helm>(\.venv/bin/)?helm) (upgrade --install|install) (?P<rest>.*)$")


def offline_render(command: Command) -> str | None:
    """A cluster-bound `helm install`/`upgrade --install` as the `helm template` with the same arguments."""
    m = HELM_INSTALL.match(command.key)
    if not m or NOT_RUN.get(command.key) == REGISTRY:  # a published chart: test_oci.py renders that path
        return None
    return f"{m['helm']} template {m['rest']}"


def test_the_cluster_bound_helm_installs_include_the_headline() -> None:
    offline = {offline_render(c) for c in COMMANDS if c.key in NOT_RUN} - {None}
    assert "helm template nova charts/nova -f values/local.yaml" in offline
    assert len(offline) >= 4


@pytest.mark.parametrize("command", sorted({c.key: c for c in COMMANDS if c.key in NOT_RUN and offline_render(c)}
                                           .values(), key=str), ids=str)
def test_cluster_bound_helm_installs_render_offline_with_the_same_arguments(clone: Path, command: Command) -> None:
    """What `helm install` would send: the chart, values files and flags the docs give are right."""
    env = {**helm.GO_RUNTIME, **os.environ, "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["sh", "-c", str(offline_render(command))], cwd=clone, env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{command} (as helm template):\n{proc.stderr[-3000:]}"
    assert helm.parse_manifests(proc.stdout)


# --- values keys ------------------------------------------------------------------------------------------

SCHEMAS = {c.name: c / "values.schema.json" for c in chart_files.discover() if (c / "values.schema.json").is_file()}
# Which chart's schema a document's values paths belong to; other docs may name any chart's keys.
DOC_CHART = {f"charts/{name}/README.md": name for name in SCHEMAS}
# `a.b.c`, `a.b=value` (as --set), `a.b: value` (as YAML)
DOTTED = re.compile(r"(?P<key>[A-Za-z][\w-]*(\.[\w*<>-]+)+)(=(?P<set>\S*)|: (?P<yaml>\S.*))?")
FILE_NAME = re.compile(r"\.(ya?ml|json|md|py|sh|txt|conf|cfg|pem|crt|key|tpl|amd64|local|lock)$")
# Dotted names in the docs that are not values paths (tools, object fields, hosts), per document.
NOT_VALUES: dict[str, set[str]] = {
    "README.md": {"lint.py", "schema.py"},
    "charts/nova/README.md": {"spec.replicas"},
    "docs/architecture.md": {"tools.lint", "metadata.namespace", "cluster.local"},
    "docs/deployment-guide.md": {"tools.lint"},
    "docs/lint-rules.md": {"lifecycle.preStop.sleep.seconds", "metadata.annotations"},
    "docs/redis.md": {"RedisHarness.terminate_pod", "tools.cluster"},
    # the typo the page shows being refused; a Kubernetes definition name
    "docs/values-annotations.md": {"redis.auth.enabeld", "io.k8s.apimachinery.pkg.api.resource.Quantity"},
}
# Named templates (`nova-common.fullname`) are helpers, not values paths.
TEMPLATE_NAMES = frozenset(re.findall(r'define "([^"]+)"', "".join(
    p.read_text() for p in sorted((ROOT / "charts").glob("*/templates/**/*.tpl")))))
PARAM_TABLE = re.compile(r"<!-- [\w-]+:params:start -->.*?<!-- [\w-]+:params:end -->", re.DOTALL)


@dataclass(frozen=True)
class ValuesPath:
    file: str
    path: tuple[str, ...]
    value: str | None  # the text after `=` (or `: `), when given
    yaml_value: bool = False  # `key: value`: the value is YAML, not --set syntax

    def __str__(self) -> str:
        return f"{self.file}: {'.'.join(self.path)}" + (f"={self.value}" if self.value is not None else "")


def _split_key(key: str) -> tuple[str, ...]:
    """helm's --set key syntax: dots separate, a backslash escapes a dot; ``a[0]`` is an index (dropped)."""
    parts = re.split(r"(?<!\\)\.", key)
    return tuple(re.sub(r"\[\d+\]$", "", p.replace("\\.", ".")) for p in parts)


def set_values(command: Command) -> Iterator[ValuesPath]:
    try:
        argv = shlex.split(strip_comment(command.text))
    except ValueError:
        return
    for flag, arg in itertools.pairwise(argv):
        if flag in ("--set", "--set-string"):
            for assignment in arg.split(","):
                key, _, value = assignment.partition("=")
                yield ValuesPath(command.file, _split_key(key), value)


def prose_paths(doc: Path) -> Iterator[ValuesPath]:
    rel = str(doc.relative_to(ROOT))
    text = PARAM_TABLE.sub("", doc.read_text())
    text = FENCE.sub("", text)
    for m in re.finditer(r"`([^`\n]+)`", text):
        token = m.group(1)
        m = DOTTED.fullmatch(token)
        if (not m or FILE_NAME.search(m["key"]) or token in NOT_VALUES.get(rel, set())
                or m["key"] in TEMPLATE_NAMES):
            continue
        value = m["set"] if m["set"] is not None else m["yaml"]
        yield ValuesPath(rel, tuple(m["key"].split(".")), value, yaml_value=m["yaml"] is not None)


def doc_values_paths() -> list[ValuesPath]:
    found = [p for c in COMMANDS for p in set_values(c)]
    for doc in DOCS:
        found += prose_paths(doc)
    return found


@cache
def _schema(chart: str) -> dict[str, Any]:
    return json.loads(SCHEMAS[chart].read_text())


def _deref(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _children(node: Any, key: str, root: dict[str, Any]) -> list[Any] | None:
    """Schemas that ``key`` (``*``: any key) has under ``node``; None when the node admits any content."""
    node = _deref(node, root)
    if node is True or node == {} or not isinstance(node, dict):
        return None
    found: list[Any] = []
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combinator) or []:
            sub_children = _children(sub, key, root)
            if sub_children is None:
                return None
            found += sub_children
    props = node.get("properties") or {}
    found += list(props.values()) if key == "*" else ([props[key]] if key in props else [])
    if found and key != "*":
        return found
    types = node.get("type")
    types = {types} if isinstance(types, str) else set(types or [])
    if types and "object" not in types:
        return found  # a scalar or a list has no keys
    extra = node.get("additionalProperties", True)
    if extra is True or extra == {}:
        return None
    return found + ([extra] if isinstance(extra, dict) else [])


def resolve(schema: dict[str, Any], path: tuple[str, ...]) -> list[Any] | None:
    """The schemas at ``path`` ([] when it does not exist; None when it goes into a free-form map)."""
    nodes: list[Any] = [schema]
    for key in path:
        key = "*" if key.startswith("<") and key.endswith(">") else key  # `<name>` stands for any key
        nxt: list[Any] = []
        for node in nodes:
            children = _children(node, key, schema)
            if children is None:
                return None
            nxt += children
        if not nxt:
            return []
        nodes = nxt
    return nodes


def _helm_value(text: str) -> Any:
    """How helm's --set types a value."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def path_errors(p: ValuesPath) -> str | None:
    charts = [DOC_CHART[p.file]] if p.file in DOC_CHART else sorted(SCHEMAS)
    for chart in charts:
        schema = _schema(chart)
        nodes = resolve(schema, p.path)
        if nodes == []:
            continue
        if p.value is None or nodes is None or p.value.startswith("<"):
            return None
        for node in nodes:
            leaf = {**_deref(node, schema), "definitions": schema.get("definitions", {})}
            value = _yaml_value(p.value) if p.yaml_value else _helm_value(p.value)
            if jsonschema.Draft7Validator(leaf).is_valid(value):
                return None
        return f"{p}: {p.value!r} is not a valid value for {'.'.join(p.path)} in {chart}'s values.schema.json"
    return f"{p}: no such key in the values.schema.json of {', '.join(charts)}"


VALUES_PATHS = doc_values_paths()


def test_values_paths_are_found_in_prose_and_in_set_flags() -> None:
    assert any(p.file == "docs/lint-rules.md" and p.value is not None for p in VALUES_PATHS)
    assert len(VALUES_PATHS) > 100


def test_every_values_key_the_docs_name_is_in_the_charts_schema() -> None:
    errors = [e for p in VALUES_PATHS if (e := path_errors(p))]
    assert not errors, "\n".join(errors)


def test_the_key_check_refuses_what_the_schema_refuses() -> None:
    assert path_errors(ValuesPath("docs/x.md", ("services", "user-service", "replicas"), "5"))
    assert path_errors(ValuesPath("charts/nova/README.md", ("preStop", "useSleepAction"), None))
    assert path_errors(ValuesPath("docs/x.md", ("postgres", "enabled"), "maybe"))
    assert not path_errors(ValuesPath("docs/x.md", ("services", "microservices", "user-service", "replicas"), "5"))
    assert not path_errors(ValuesPath("docs/x.md", ("postgres", "postgresql", "parameters", "shared_buffers"), None))


def test_listed_non_values_names_are_still_in_their_docs() -> None:
    for rel, names in NOT_VALUES.items():
        text = (ROOT / rel).read_text()
        assert not [n for n in names if f"`{n}`" not in text], rel


# --- paths, versions and claims ---------------------------------------------------------------------------

REPO_PATH = re.compile(r"^(\.github|bench|charts|docs|kind|scripts|tests|tools|values)/[\w./-]*$")


def _named_paths(doc: Path) -> Iterator[tuple[str, Path]]:
    """Repository paths in backticks or in commands (relative to the root; ``ci/...`` and ``*-values.yaml``
    in a chart README relative to that chart). Globs and placeholders are left out."""
    rel = str(doc.relative_to(ROOT))
    text = PARAM_TABLE.sub("", doc.read_text())
    tokens = re.findall(r"`([^`\n]+)`", FENCE.sub("", text))
    tokens += [t for c in COMMANDS if c.file == rel for t in strip_comment(c.text).split()]
    for token in tokens:
        token = token.rstrip(".,:;)")
        if any(ch in token for ch in "*<>{}$"):
            continue
        if REPO_PATH.match(token):
            yield token, ROOT / token
        elif rel in DOC_CHART and (token.startswith("ci/") or token.endswith("-values.yaml")):
            yield token, doc.parent / token


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_paths_the_docs_name_exist(doc: Path) -> None:
    missing = [token for token, path in _named_paths(doc) if not path.exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_the_guide_states_the_kind_version_the_tools_and_ci_use() -> None:
    from tools.cluster import runner

    minimum = runner.KIND_MIN_VERSION
    assert minimum in runner.INSTALL_HINTS["kind"]
    workflow = yaml.safe_load((ROOT / ".github/workflows/install.yaml").read_text())
    matrix = [str(e["kind"]) for job in workflow["jobs"].values()
              for e in (job.get("strategy") or {}).get("matrix", {}).get("include", []) if "kind" in e]
    assert matrix and min(matrix, key=lambda v: tuple(int(x) for x in v.lstrip("v").split("."))) == minimum
    guide = (ROOT / "docs/deployment-guide.md").read_text()
    stated = set(re.findall(r"\bv0\.\d+(?:\.\d+)?\b", guide))
    assert f"`kind` ({minimum} or newer" in guide
    assert stated <= set(matrix), f"the guide names kind versions CI does not use: {stated - set(matrix)}"


def _zone_spread(objs: list[KubeObject]) -> dict[str, bool]:
    spread = {}
    for o in objs:
        if o.kind in ("StatefulSet", "Deployment"):
            pod = o["spec"]["template"]["spec"]
            keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints") or []}
            spread[o.name] = "topology.kubernetes.io/zone" in keys
    return spread


def test_the_guide_says_which_components_spread_over_zones_today() -> None:
    objects = helm.render(helm.CHARTS_DIR / "nova", chart_files.profile_values("production"))
    spread = _zone_spread(objects)
    assert spread["redis"] and spread["redis-master"] and spread["nova-user-service"]
    assert spread["postgres"] and spread["postgres-etcd"]
    when = {o.name: {c.get("whenUnsatisfiable") for c in o["spec"]["template"]["spec"]["topologySpreadConstraints"]
                     if c.get("topologyKey") == "topology.kubernetes.io/zone"}
            for o in objects if o.kind == "StatefulSet"}
    assert when == {"postgres": {"DoNotSchedule"}, "postgres-etcd": {"DoNotSchedule"}, "redis": {"ScheduleAnyway"}}, (
        "a zone spread changed: update docs/deployment-guide.md's Zones table and this test")
    guide = " ".join((ROOT / "docs/deployment-guide.md").read_text().split())
    assert "| etcd (3 members) | `DoNotSchedule`" in guide and "| PostgreSQL (3 pods) | `DoNotSchedule`" in guide
    assert "| Redis + Sentinel (3 pods) | `ScheduleAnyway`" in guide
