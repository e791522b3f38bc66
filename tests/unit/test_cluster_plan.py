"""tools.cluster plans: the commands each verb runs, in order, computed from rendered objects without a cluster.

The objects below have the names, labels and ``# Source:`` paths a render of charts/nova gives under the
production profile (docs/architecture.md): Redis in nova-redis, etcd and PostgreSQL in nova-database,
services in nova-services.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path

import pytest

from tools import charts as chart_files
from tools.cluster import inventory, plan
from tools.cluster.plan import Settings, Step
from tools.manifest import KubeObject

# The production profile with its example site overlay, as a user deploys it (paths relative to the repository).
PRODUCTION = tuple(str(p.relative_to(chart_files.REPO_ROOT)) for p in chart_files.profile_values("production"))
S = Settings(kubectl="kubectl", helm="helm", kind="kind", python="py", values=PRODUCTION)


def _sts(name: str, ns: str, chart: str, source: str, containers: list[dict], replicas: int = 3,
         kind: str = "StatefulSet", component: str = "") -> KubeObject:
    sel = {"app.kubernetes.io/name": chart.rsplit("-", 1)[0], "app.kubernetes.io/instance": "nova",
           "app.kubernetes.io/component": component or name}
    return KubeObject({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": {"helm.sh/chart": chart, **sel}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                 "template": {"metadata": {"labels": sel}, "spec": {"containers": copy.deepcopy(containers)}}},
    }, source)


def _svc(name: str, ns: str, chart: str, source: str, port: int, headless: bool = False) -> KubeObject:
    spec: dict = {"ports": [{"name": "p", "port": port}]}
    if headless:
        spec["clusterIP"] = "None"
    return KubeObject({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": name, "namespace": ns, "labels": {"helm.sh/chart": chart}},
                           "spec": spec}, source)


def _secret_env(name: str, key: str, secret: str = "nova-redis-credentials", optional: bool = False) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key,
                                                         **({"optional": True} if optional else {})}}}


REDIS_CONTAINERS = [
    {"name": "redis", "image": "docker.io/library/redis:7.2.5-bookworm",
     "ports": [{"name": "redis", "containerPort": 6379}],
     "env": [_secret_env("REDIS_PASSWORD", "redis-password"), _secret_env("SENTINEL_PASSWORD", "sentinel-password")]},
    {"name": "sentinel", "image": "docker.io/library/redis:7.2.5-bookworm",
     "ports": [{"name": "sentinel", "containerPort": 26379}],
     "env": [_secret_env("REDIS_PASSWORD", "redis-password"), _secret_env("SENTINEL_PASSWORD", "sentinel-password")]},
]
PG_CONTAINERS = [{"name": "postgres", "ports": [{"name": "postgresql", "containerPort": 5432},
                                                {"name": "patroni", "containerPort": 8008}],
                  "env": [{"name": "NOVA_ROLE_LABEL", "value": "nova-postgres/role"},
                          _secret_env("PATRONI_SUPERUSER_PASSWORD", "superuser-password", "nova-postgres-credentials")]}]
TEST_POD_LABELS = {"app.kubernetes.io/name": "nova", "app.kubernetes.io/instance": "nova",
                   "app.kubernetes.io/component": "test", "nova.io/tested-service": "user-service"}
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def production_objects(with_namespaces: bool = False) -> list[KubeObject]:
    r, p, n = "nova-redis-0.2.0", "nova-postgres-0.2.0", "nova-0.3.0"
    objs = [
        # deliberately out of deploy order: the plan must sort Redis, etcd, PostgreSQL, services
        _sts("nova-user-service", "nova-services", n, "nova/templates/services/deployment.yaml",
             [{"name": "user-service"}], kind="Deployment"),
        _sts("nova-postgres", "nova-database", p, "nova/charts/postgres/templates/postgres/statefulset.yaml",
             PG_CONTAINERS),
        _sts("nova-postgres-etcd", "nova-database", p, "nova/charts/postgres/templates/etcd/statefulset.yaml",
             [{"name": "etcd"}], component="etcd"),
        _sts("nova-redis", "nova-redis", r, "nova/charts/redis/templates/redis/statefulset.yaml", REDIS_CONTAINERS),
        _sts("nova-auth-service", "nova-services", n, "nova/templates/services/deployment.yaml",
             [{"name": "auth-service"}], replicas=2, kind="Deployment"),
        _svc("nova-redis-headless", "nova-redis", r, "nova/charts/redis/templates/redis/service-headless.yaml",
             6379, headless=True),
        _svc("nova-redis-master", "nova-redis", r, "nova/charts/redis/templates/redis/service-master.yaml", 6379),
        _svc("nova-redis-sentinel", "nova-redis", r, "nova/charts/redis/templates/sentinel/service.yaml", 26379),
        _svc("nova-postgres-primary", "nova-database", p, "nova/charts/postgres/templates/postgres/service.yaml", 5432),
        _svc("nova-postgres-replicas", "nova-database", p, "nova/charts/postgres/templates/postgres/service.yaml", 5432),
        _svc("nova-user-service", "nova-services", n, "nova/templates/services/service.yaml", 8080),
        KubeObject({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "nova-user-service", "namespace": "nova-services"},
                        "data": {"REDIS_SENTINEL_MASTER": base64.b64encode(b"novamaster").decode()}},
                       "nova/templates/secrets/secret.yaml"),
        KubeObject({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "nova-test-user-service", "namespace": "nova-services",
                                     "labels": TEST_POD_LABELS, "annotations": {"helm.sh/hook": "test"}},
                        "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                                 "initContainers": [{"name": "check-postgres", "image": "postgres:16-alpine",
                                                     "securityContext": RESTRICTED}],
                                 "containers": [{"name": "check-http", "image": "agnhost"}]}},
                       "nova/templates/tests/pod.yaml"),
    ]
    if with_namespaces:
        objs += [KubeObject({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}},
                                "nova/templates/namespaces/namespace.yaml")
                 for n in ("nova-redis", "nova-database", "nova-services")]
    return objs


def in_namespace(objs: list[KubeObject], namespace: str) -> list[KubeObject]:
    """The same objects, all in ``namespace`` (new objects: a KubeObject reads its metadata once)."""
    return [KubeObject({**o.obj, "metadata": {**o.obj["metadata"], "namespace": namespace}}, o.source) for o in objs]


@pytest.fixture
def inv() -> inventory.Inventory:
    return inventory.build(production_objects(), "nova", "nova")


def commands(steps: list[Step]) -> list[tuple[str, ...]]:
    return [s.argv for s in steps if not s.is_note]


# --- inventory ---------------------------------------------------------------------------------------

def test_inventory_orders_redis_then_etcd_then_postgres_then_services(inv: inventory.Inventory) -> None:
    assert [(w.phase, w.component) for w in inv.workloads] == [
        ("redis", "redis"), ("postgresql", "postgres-etcd"), ("postgresql", "postgres"),
        ("services", "auth-service"), ("services", "user-service")]


def test_inventory_takes_namespaces_from_objects_and_skips_hooks_and_headless(inv: inventory.Inventory) -> None:
    assert inv.namespaces == ("nova", "nova-services", "nova-database", "nova-redis")
    assert "nova-redis-headless" not in {s.name for s in inv.services}
    assert all(w.name != "nova-test-user-service" for w in inv.workloads)


def test_inventory_finds_the_master_set_role_label_and_the_passwords(inv: inventory.Inventory) -> None:
    assert inv.master_set == "novamaster"
    assert inv.role_label == "nova-postgres/role"
    assert inv.redis_password() == inventory.SecretRef("nova-redis", "nova-redis-credentials", "redis-password")
    assert inv.sentinel_password() == inventory.SecretRef("nova-redis", "nova-redis-credentials", "sentinel-password")
    assert inv.postgres_password() == inventory.SecretRef("nova-database", "nova-postgres-credentials",
                                                          "superuser-password")


def test_an_optional_sentinel_password_falls_back_to_the_redis_password() -> None:
    """An existingSecret without sentinel-password keeps Sentinel on redis-password (docs/secrets.md)."""
    objs = production_objects()
    redis = next(o for o in objs if o.name == "nova-redis")
    for c in redis.obj["spec"]["template"]["spec"]["containers"]:
        c["env"][1] = _secret_env("SENTINEL_PASSWORD", "sentinel-password", optional=True)
    ref = inventory.build(objs, "nova", "nova").sentinel_password()
    assert ref == inventory.SecretRef("nova-redis", "nova-redis-credentials", "sentinel-password", "redis-password")
    assert ref.go_template() == ('go-template={{with index .data "sentinel-password"}}{{base64decode .}}{{else}}'
                                 '{{index .data "redis-password" | base64decode}}{{end}}')


# --- deploy --------------------------------------------------------------------------------------------

def test_deploy_installs_then_waits_for_redis_then_postgres_then_services(inv: inventory.Inventory) -> None:
    steps = plan.plan_deploy(S, inv)
    cmds = commands(steps)
    assert cmds[0] == ("kubectl", "apply", "-f", "-")
    assert cmds[1] == ("helm", "upgrade", "--install", "nova", "charts/nova", "--namespace", "nova",
                       "--create-namespace", "-f", PRODUCTION[0], "-f", PRODUCTION[1], "--timeout", "900s")
    waits = [c for c in cmds if c[1:3] == ("rollout", "status")]
    assert waits == [
        ("kubectl", "rollout", "status", "statefulset/nova-redis", "-n", "nova-redis", "--timeout=900s"),
        ("kubectl", "rollout", "status", "statefulset/nova-postgres-etcd", "-n", "nova-database", "--timeout=900s"),
        ("kubectl", "rollout", "status", "statefulset/nova-postgres", "-n", "nova-database", "--timeout=900s"),
        ("kubectl", "rollout", "status", "deployment/nova-auth-service", "-n", "nova-services", "--timeout=900s"),
        ("kubectl", "rollout", "status", "deployment/nova-user-service", "-n", "nova-services", "--timeout=900s"),
    ]
    # Redis is verified (Sentinel asked for the master) before PostgreSQL is waited for, and the
    # PostgreSQL leader before the services.
    idx = {c: i for i, c in enumerate(cmds)}
    sentinel = next(c for c in cmds if "SENTINEL" in " ".join(c))
    leader = next(c for c in cmds if "nova-postgres/role=primary" in " ".join(c))
    assert idx[waits[0]] < idx[sentinel] < idx[waits[1]]
    assert idx[waits[2]] < idx[leader] < idx[waits[3]]


def test_deploy_prints_progress_per_component(inv: inventory.Inventory) -> None:
    titles = [s.title for s in plan.plan_deploy(S, inv)]
    assert "[1/3 Redis + Sentinel] ready" in titles
    assert "[2/3 PostgreSQL (etcd + Patroni)] ready" in titles
    assert "[3/3 services] ready" in titles
    assert "[3/3 services] waiting for Deployment nova-services/nova-user-service (3 ready)" in titles


def test_deploy_creates_every_target_namespace_the_chart_does_not_create(inv: inventory.Inventory) -> None:
    step = plan.plan_deploy(S, inv)[1]
    assert step.stdin is not None
    names = [ln.split(": ")[1] for ln in step.stdin.splitlines() if ln.startswith("  name: ")]
    assert names == ["nova-services", "nova-database", "nova-redis"]


def test_deploy_leaves_namespaces_the_chart_renders_to_helm() -> None:
    inv = inventory.build(production_objects(with_namespaces=True), "nova", "nova")
    cmds = commands(plan.plan_deploy(S, inv))
    assert cmds[0][:3] == ("helm", "upgrade", "--install")


def test_deploy_in_the_release_namespace_only_creates_nothing_itself() -> None:
    objs = in_namespace(production_objects(), "nova")
    steps = plan.plan_deploy(S, inventory.build(objs, "nova", "nova"))
    applied = [st.stdin or "" for st in steps if st.argv[1:3] == ("apply", "-f")]
    assert applied and not any("kind: Namespace" in a for a in applied)  # only the client pod
    cmds = commands(steps)
    assert all(c[c.index("-n") + 1] == "nova" for c in cmds if "-n" in c)


def test_deploy_with_a_context_passes_it_to_kubectl_and_helm(inv: inventory.Inventory) -> None:
    s = Settings(kubectl="kubectl", helm="helm", context="kind-nova")
    for c in commands(plan.plan_deploy(s, inv)):
        assert ("--context" in c) if c[0] == "kubectl" else ("--kube-context" in c)


def test_probes_run_in_a_client_pod_with_the_helm_test_identity(inv: inventory.Inventory) -> None:
    steps = plan.plan_status(S, inv)
    apply = next(st for st in steps if st.argv[1:4] == ("apply", "-f", "-"))
    pod = json.loads(apply.stdin or "")
    assert pod["metadata"]["namespace"] == "nova-services"
    labels = pod["metadata"]["labels"]
    assert {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                                   "app.kubernetes.io/component")} == {
        "app.kubernetes.io/name": "nova", "app.kubernetes.io/instance": "nova", "app.kubernetes.io/component": "test"}
    assert "nova.io/tested-service" not in labels and "annotations" not in pod["metadata"]
    assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [
        ("redis", "docker.io/library/redis:7.2.5-bookworm"), ("psql", "postgres:16-alpine")]
    assert all(c["securityContext"] == RESTRICTED for c in pod["spec"]["containers"])
    execs = [st for st in steps if "exec" in st.argv]
    client_execs = [st for st in execs if "nova-cluster-client" in st.argv]
    assert len(client_execs) == 3 and all(st.argv[st.argv.index("-n") + 1] == "nova-services" for st in client_execs)
    assert all(st.access for st in execs)
    # the client pod is started before the first probe and deleted after the last one
    idx = {id(st): i for i, st in enumerate(steps)}
    delete = next(st for st in steps if st.argv[1:3] == ("delete", "pod"))
    assert idx[id(apply)] < min(idx[id(st)] for st in client_execs) < idx[id(delete)]
    assert max(idx[id(st)] for st in client_execs) < idx[id(delete)]


def test_each_password_goes_on_stdin_to_the_probe_of_its_own_port(inv: inventory.Inventory) -> None:
    steps = plan.redis_master_steps(S, inv, plan.client(S, inv)) + plan.postgres_leader_steps(S, inv,
                                                                                               plan.client(S, inv))
    reads = {st.capture: st for st in steps if st.capture}
    assert reads["sentinel_password"].argv == (
        "kubectl", "get", "secret", "nova-redis-credentials", "-n", "nova-redis", "-o",
        'go-template={{index .data "sentinel-password" | base64decode}}')
    assert reads["redis_password"].argv[-1] == 'go-template={{index .data "redis-password" | base64decode}}'
    assert reads["postgres_password"].argv[3:6] == ("nova-postgres-credentials", "-n", "nova-database")
    by_stdin = {st.stdin_from: st for st in steps if st.stdin_from}
    sentinel, role, primary = by_stdin["sentinel_password"], by_stdin["redis_password"], by_stdin["postgres_password"]
    assert "-h nova-redis-sentinel.nova-redis.svc -p 26379 SENTINEL get-master-addr-by-name novamaster" in sentinel.argv[-1]
    assert "-h nova-redis-master.nova-redis.svc -p 6379 ROLE" in role.argv[-1]
    assert "-h nova-postgres-primary.nova-database.svc -p 5432 -U postgres" in primary.argv[-1]
    for st in (sentinel, role, primary):
        assert st.argv[1:3] == ("exec", "-i") and "nova-cluster-client" in st.argv
    assert all("s3cr3t" not in " ".join(st.argv) for st in steps)


@pytest.mark.parametrize(("script", "good", "bad"), [
    (plan.sentinel_master_script("h", 26379, "nova", True), "h.example\n6379", "NOAUTH Authentication required."),
    (plan.redis_role_script("h", 6379, True), "master\n123", "slave\nh\n6379"),
    (plan.postgres_primary_script("h", 5432, "postgres"), "f", "t"),
], ids=["sentinel", "role", "primary"])
def test_probe_scripts_check_the_answer_not_the_exit_code(tmp_path: Path, script: str, good: str, bad: str) -> None:
    """redis-cli prints NOAUTH and exits 0: the probe fails on a wrong answer even when the client exits 0."""
    for tool in ("redis-cli", "psql"):
        (tmp_path / tool).write_text('#!/bin/sh\nprintf "$FAKE_ANSWER\\n"\n')
        (tmp_path / tool).chmod(0o755)
    for answer, code in ((good, 0), (bad, 1), ("", 1)):
        proc = subprocess.run(["sh", "-c", script], input="pw", capture_output=True, text=True, check=False,
                              env={"PATH": f"{tmp_path}:/usr/bin:/bin", "FAKE_ANSWER": answer})
        assert proc.returncode == code, (answer, proc.stdout, proc.stderr)


def test_without_a_helm_test_pod_sentinel_is_asked_over_loopback_and_the_endpoint_is_not_checked() -> None:
    objs = [o for o in production_objects() if o.kind != "Pod"]
    inv = inventory.build(objs, "nova", "nova")
    assert plan.client(S, inv) is None
    steps = plan.redis_master_steps(S, inv)
    ask = next(st for st in steps if st.stdin_from == "sentinel_password")
    assert ask.argv[:9] == ("kubectl", "exec", "-i", "-n", "nova-redis", "nova-redis-0", "-c", "sentinel", "--")
    assert "-h 127.0.0.1 -p 26379 SENTINEL" in ask.argv[-1]
    assert not any("ROLE" in " ".join(st.argv) for st in steps)
    assert any("not checked" in st.title for st in steps if st.is_note)


# --- status / logs ----------------------------------------------------------------------------------------

def test_status_shows_every_component_then_master_and_leader(inv: inventory.Inventory) -> None:
    cmds = commands(plan.plan_status(S, inv))
    assert cmds[0] == ("helm", "status", "nova", "--namespace", "nova")
    gets = [c for c in cmds if c[1] == "get" and c[2] in ("statefulset/nova-redis", "statefulset/nova-postgres-etcd",
                                                           "statefulset/nova-postgres", "deployment/nova-auth-service",
                                                           "deployment/nova-user-service")]
    assert [c[2] for c in gets] == ["statefulset/nova-redis", "statefulset/nova-postgres-etcd",
                                   "statefulset/nova-postgres", "deployment/nova-auth-service",
                                   "deployment/nova-user-service"]
    pods = [c for c in cmds if c[1:3] == ("get", "pods") and "wide" in c]
    assert len(pods) == 5
    assert ("kubectl", "get", "pods", "-n", "nova-database", "-l",
            ("app.kubernetes.io/component=nova-postgres,app.kubernetes.io/instance=nova,"
            "app.kubernetes.io/name=nova-postgres,nova-postgres/role=primary"), "-o", "name") in cmds
    notes = [s.title for s in plan.plan_status(S, inv) if s.is_note]
    assert "  kubectl port-forward -n nova-redis svc/nova-redis-master 6379:6379" in notes
    assert "  kubectl port-forward -n nova-services svc/nova-user-service 8080:8080" in notes
    # two Services on 5432: the second gets the next local port
    assert "  kubectl port-forward -n nova-database svc/nova-postgres-primary 5432:5432" in notes
    assert "  kubectl port-forward -n nova-database svc/nova-postgres-replicas 5433:5432" in notes
    assert all(s.optional for s in plan.plan_status(S, inv) if not s.is_note)


def test_logs_of_one_component_or_of_all(inv: inventory.Inventory) -> None:
    one = commands(plan.plan_logs(S, inv, "user-service"))
    assert one == [("kubectl", "logs", "-n", "nova-services", "-l",
                    ("app.kubernetes.io/component=nova-user-service,app.kubernetes.io/instance=nova,"
                    "app.kubernetes.io/name=nova"), "--all-containers", "--prefix", "--tail=200",
                    "--max-log-requests=20")]
    assert [c[3] for c in commands(plan.plan_logs(S, inv, "postgresql"))] == ["nova-database", "nova-database"]
    assert len(commands(plan.plan_logs(S, inv, None))) == 5


def test_logs_of_an_unknown_component_names_the_known_ones(inv: inventory.Inventory) -> None:
    with pytest.raises(plan.UnknownComponent, match="unknown component 'cache': choose one of redis, postgres-etcd"):
        plan.plan_logs(S, inv, "cache")


# --- test / cleanup / up / down ---------------------------------------------------------------------------

def test_test_runs_helm_test_then_the_cluster_tests() -> None:
    steps = plan.plan_test(S, ("-x",))
    assert commands(steps) == [
        ("helm", "test", "nova", "--namespace", "nova", "--timeout", "900s", "--logs"),
        ("py", "-m", "pytest", "-q", "-m", "cluster", "tests/cluster", "-x"),
    ]
    assert steps[1].env == {"NOVA_RELEASE": "nova", "NOVA_NAMESPACE": "nova", "NOVA_VALUES": ",".join(PRODUCTION),
                            "NOVA_CHART": "charts/nova"}


def test_cleanup_uninstalls_then_deletes_claims_and_namespaces(inv: inventory.Inventory) -> None:
    cmds = commands(plan.plan_cleanup(S, inv))
    assert cmds[0] == ("helm", "uninstall", "nova", "--namespace", "nova", "--ignore-not-found", "--wait",
                       "--timeout", "900s")
    assert [c[4] for c in cmds[1:-1]] == ["nova", "nova-services", "nova-database", "nova-redis"]
    assert cmds[-1] == ("kubectl", "delete", "namespace", "nova", "nova-services", "nova-database", "nova-redis",
                        "--ignore-not-found")


def test_cleanup_never_deletes_the_default_namespace() -> None:
    objs = in_namespace(production_objects(), "default")
    s = Settings(kubectl="kubectl", helm="helm", namespace="default")
    cmds = commands(plan.plan_cleanup(s, inventory.build(objs, "nova", "default")))
    assert not any(c[1:3] == ("delete", "namespace") for c in cmds)


def test_up_creates_the_kind_cluster_from_the_repo_config_and_waits_for_nodes() -> None:
    cmds = commands(plan.plan_up(S, existing_clusters=[]))
    assert cmds == [
        ("kind", "create", "cluster", "--name", "nova", "--config", "kind/cluster.yaml", "--wait", "180s"),
        ("kubectl", "--context", "kind-nova", "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"),
        ("kubectl", "--context", "kind-nova", "get", "nodes", "-L", "topology.kubernetes.io/zone"),
    ]


def test_up_reuses_an_existing_cluster_and_takes_a_node_image() -> None:
    assert commands(plan.plan_up(S, existing_clusters=["nova"]))[0][0] == "kubectl"
    s = Settings(node_image="kindest/node:v1.29.14")
    assert commands(plan.plan_up(s, []))[0][-2:] == ("--image", "kindest/node:v1.29.14")


def test_down_deletes_the_kind_cluster() -> None:
    assert commands(plan.plan_down(S)) == [("kind", "delete", "cluster", "--name", "nova")]


def test_phase_comes_from_the_alias_chart_label_when_the_source_path_says_nothing() -> None:
    objs = production_objects()
    for o in objs:
        labels = o.obj["metadata"].get("labels") or {}
        if "helm.sh/chart" in labels:
            labels["helm.sh/chart"] = labels["helm.sh/chart"].replace("nova-redis-", "redis-").replace(
                "nova-postgres-", "postgres-")
    stripped = [type(o)(o.obj, None) for o in objs]
    inv = inventory.build(stripped, "nova", "nova")
    assert [w.phase for w in inv.workloads] == ["redis", "postgresql", "postgresql", "services", "services"]
