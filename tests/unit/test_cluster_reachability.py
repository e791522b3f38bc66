"""Every in-cluster connection that tools.cluster's probes and the cluster tests open is allowed by the charts'
own NetworkPolicies (Kind enforces them), checked statically over every rendered profile and ci/ scenario.

The connections are data: each cluster test carries ``@reaches(Access(client, target, port), ...)`` and each
``kubectl exec`` step of a tools.cluster plan its ``access``; a test or probe without a declaration fails
here, so a new one cannot skip the proof. Clients and targets are resolved from the render (the client
pod is built from the rendered helm test Pod by the same code tools.cluster uses), ports by name to the
destination container's port, and the port-aware model of test_nova_namespaces decides: the destination's
ingress policies admit the source on that port, and the source's egress policies let it out on that port.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import CHARTS, ROOT, render
from tests.unit.test_nova_namespaces import egress_ports, ingress_allowed, policies, selects
from tools import charts as chart_files
from tools.cluster import inventory, plan
from tools.cluster.access import CLIENT, DNS, HELM_TEST, SELF, SERVICE_TARGETS, Access
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
PROFILES = list(chart_files.profiles(CHART))
PROFILE_IDS = [p.relative_to(ROOT).as_posix() for p in PROFILES]
RELEASE = NAMESPACE = "nova"
DNS_POD = ("kube-system", {"k8s-app": "kube-dns"})

Pod = tuple[str, dict[str, str]]  # (namespace, labels)
Target = tuple[Pod, str | None, int | None]  # destination pod, its port's name and number


# ------------------------------------------------------------------------------------------- declarations

def cluster_tests() -> dict[str, Callable[..., Any]]:
    """Every test function of tests/cluster, by `module::name`."""
    found: dict[str, Callable[..., Any]] = {}
    for path in sorted((ROOT / "tests" / "cluster").glob("test_*.py")):
        module = importlib.import_module(f"tests.cluster.{path.stem}")
        for name, fn in vars(module).items():
            if name.startswith("test_") and callable(fn):
                found[f"{path.stem}::{name}"] = fn
    return found


def plans(inv: inventory.Inventory) -> Iterator[tuple[str, plan.Step]]:
    s = plan.Settings(release=RELEASE, namespace=NAMESPACE)
    for verb, steps in (("deploy", plan.plan_deploy(s, inv)), ("status", plan.plan_status(s, inv))):
        for step in steps:
            yield verb, step


def declared(inv: inventory.Inventory) -> list[tuple[str, Access]]:
    out = [(f"tests/cluster/{where}", a) for where, fn in cluster_tests().items() for a in fn.__reaches__]
    out += [(f"tools.cluster {verb}: {step.title}", a) for verb, step in plans(inv) for a in step.access]
    return out


# ------------------------------------------------------------------------------------------- resolution

def _template(spec: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    tpl = spec.get("template") or {}
    return dict((tpl.get("metadata") or {}).get("labels") or {}), tpl.get("spec") or {}


def _workload(inv: inventory.Inventory, role: str) -> inventory.Workload | None:
    if role == "redis":
        return inv.redis
    if role == "postgres":
        return inv.postgres
    return next((w for w in inv.workloads if w.component.endswith(role)), None)


def clients(objs: list[KubeObject], inv: inventory.Inventory, client: str) -> list[Pod]:
    if client == CLIENT:
        c = plan.client(plan.Settings(release=RELEASE, namespace=NAMESPACE), inv)
        if c is None:
            return []
        meta = json.loads(c.manifest)["metadata"]
        return [(meta["namespace"], meta["labels"])]
    if client == HELM_TEST:
        return [(o.namespace or NAMESPACE, dict(o["metadata"].get("labels") or {})) for o in objs
                if o.kind == "Pod" and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    w = _workload(inv, client)
    return [(w.namespace, _template(w.spec)[0])] if w else []


def _port(pod_spec: dict[str, Any], want: str | int) -> tuple[str | None, int | None] | None:
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            if want in (p.get("name"), p.get("containerPort")):
                return p.get("name"), p.get("containerPort")
    return None


def _service_targets(objs: list[KubeObject], inv: inventory.Inventory, phase: str, suffix: str,
                     port: str) -> list[Target] | None:
    svc = next((o for o in objs if o.kind == "Service" and o.name.endswith(suffix)
                and inventory._phase(o) == phase), None)
    if svc is None:
        return None
    sp = next((p for p in svc["spec"]["ports"] if port in (p.get("name"), p.get("port"))), None)
    assert sp, f"Service {svc.namespace}/{svc.name} has no port {port}"
    selector = dict(svc["spec"].get("selector") or {})
    runtime = {k: v for k, v in selector.items() if k == inv.role_label}  # set by Patroni, not in the template
    out: list[Target] = []
    for w in inv.workloads:
        labels, pod_spec = _template(w.spec)
        if w.namespace == (svc.namespace or NAMESPACE) and selects(
                {"matchLabels": {k: v for k, v in selector.items() if k not in runtime}}, labels):
            resolved = _port(pod_spec, sp.get("targetPort", sp["port"]))
            assert resolved, f"{w.ref}: no container port {sp.get('targetPort')} behind Service {svc.name}"
            out.append(((w.namespace, {**labels, **runtime}), *resolved))
    assert out, f"Service {svc.namespace}/{svc.name} selects no workload of the render"
    return out


def targets(objs: list[KubeObject], inv: inventory.Inventory, a: Access) -> list[Target] | None:
    """The destination pods and ports of an access; None when the render has no such target (e.g. external
    Redis). ``self`` resolves to no network destination (loopback)."""
    if a.target == DNS:
        return [(DNS_POD, "dns", 53)]
    if a.target == SELF:
        w = _workload(inv, a.client)
        if w is None:
            return None
        assert _port(_template(w.spec)[1], a.port), f"{a}: the {a.client} pod has no port {a.port}"
        return []
    if a.target in SERVICE_TARGETS:
        return _service_targets(objs, inv, *SERVICE_TARGETS[a.target], a.port)
    if a.target.startswith("pod:"):
        w = _workload(inv, a.target.removeprefix("pod:"))
        if w is None:
            return None
        labels, pod_spec = _template(w.spec)
        resolved = _port(pod_spec, a.port)
        assert resolved, f"{a}: {w.ref} has no container port {a.port}"
        return [((w.namespace, labels), *resolved)]
    if a.target == "services":
        out: list[Target] = []
        for w in inv.phase("services"):
            labels, pod_spec = _template(w.spec)
            resolved = _port(pod_spec, a.port)
            assert resolved, f"{a}: {w.ref} has no container port {a.port}"
            out.append(((w.namespace, labels), *resolved))
        return out
    raise AssertionError(f"{a}: unknown target {a.target!r} (see tools/cluster/access.py)")


# ------------------------------------------------------------------------------------------- the model

def egress_open(objs: list[KubeObject], src: Pod, dst: Pod, name: str | None, number: int | None) -> bool:
    """No egress policy selects the source, or one opens that port towards the destination."""
    def types(spec: dict[str, Any]) -> list[str]:
        return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]

    if not [p for p in policies(objs) if p.namespace == src[0] and selects(p["spec"]["podSelector"], src[1])
            and "Egress" in types(p["spec"])]:
        return True
    ports = egress_ports(objs, src, dst)
    return None in ports or bool({name, number} & ports - {None})


def verdict(objs: list[KubeObject], src: Pod, dst: Target) -> str | None:
    """None when allowed, else why not."""
    pod, name, number = dst
    if not any(ingress_allowed(objs, src, pod, p) for p in (name, number) if p is not None):
        return f"ingress to {pod} on {name}/{number} is not admitted"
    if not egress_open(objs, src, pod, name, number):
        return f"egress from {src} to {pod} on {name}/{number} is not allowed"
    return None


def check(objs: list[KubeObject], inv: inventory.Inventory, a: Access) -> tuple[bool, list[str]]:
    """(resolved in this render, problems)."""
    dsts = targets(objs, inv, a)
    if dsts is None:
        return False, []
    srcs = clients(objs, inv, a.client)
    if not srcs:
        return True, [f"{a}: no client {a.client!r} in the render (a client pod needs tests.enabled=true)"]
    return True, [f"{a}: {why}" for src in srcs for dst in dsts if (why := verdict(objs, src, dst))]


def _render(profile: object) -> tuple[list[KubeObject], inventory.Inventory]:
    objs = render(CHART, chart_files.profile_values(profile), namespace=NAMESPACE)
    return objs, inventory.build(objs, RELEASE, NAMESPACE)


# ------------------------------------------------------------------------------------------- tests

def test_every_cluster_test_declares_the_connections_it_opens() -> None:
    tests = cluster_tests()
    assert len(tests) >= 6, sorted(tests)
    missing = [name for name, fn in tests.items() if not isinstance(getattr(fn, "__reaches__", None), tuple)]
    assert not missing, f"declare @reaches(...) (tests/cluster/support.py) on {missing}"
    assert all(isinstance(a, Access) for fn in tests.values() for a in fn.__reaches__)


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_exec_step_of_tools_cluster_declares_its_connections(profile: object) -> None:
    _, inv = _render(profile)
    execs = [(verb, st) for verb, st in plans(inv) if "exec" in st.argv]
    assert execs or inv.redis is None and inv.postgres is None
    assert not [f"{verb}: {st.title}" for verb, st in execs if not st.access]


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_declared_connection_is_allowed_by_the_rendered_network_policies(profile: object) -> None:
    objs, inv = _render(profile)
    problems, resolved = [], 0
    for where, a in declared(inv):
        ok, found = check(objs, inv, a)
        resolved += ok
        problems += [f"{where}: {p}" for p in found]
    assert not problems, "\n".join(problems)
    assert resolved >= (20 if inv.redis else 3), resolved


def test_every_declared_connection_resolves_in_some_scenario() -> None:
    """A declaration that never resolves would prove nothing."""
    pending = {a for _, a in declared(_render(PROFILES[0])[1])}
    for profile in PROFILES:
        objs, inv = _render(profile)
        pending -= {a for _, a in declared(inv) if check(objs, inv, a)[0]}
    assert not pending, sorted(map(str, pending))


@pytest.mark.parametrize("profile", [p for p in PROFILES if "external" not in p.name],
                         ids=[i for i in PROFILE_IDS if "external" not in i])
def test_a_redis_pod_or_a_stranger_is_not_admitted_to_the_write_safe_endpoint(profile: object) -> None:
    """The model can say no: the old cluster test connected from a Redis pod to the -master Service."""
    objs, inv = _render(profile)
    for client in ("redis", "postgres"):
        ok, problems = check(objs, inv, Access(client, "redis-master", "redis"))
        assert ok and problems, f"{client} -> redis-master should be denied"
    stranger = (inv.phase("services")[0].namespace, {"app": "stranger"})
    for a in (Access(CLIENT, "redis-master", "redis"), Access(CLIENT, "redis-sentinel", "sentinel"),
              Access(CLIENT, "postgres-primary", "postgresql")):
        dsts = targets(objs, inv, a)
        assert dsts and all(verdict(objs, stranger, d) for d in dsts), a


def test_the_client_pod_takes_the_helm_test_pods_identity_and_security_context() -> None:
    objs, inv = _render(CHART / "ci" / "split-namespaces-values.yaml")
    c = plan.client(plan.Settings(release=RELEASE, namespace=NAMESPACE), inv)
    assert c is not None
    pod = json.loads(c.manifest)
    test_pod = next(o for o in objs if o.kind == "Pod" and "helm.sh/hook" in o["metadata"]["annotations"])
    labels = pod["metadata"]["labels"]
    assert pod["metadata"]["namespace"] == test_pod.namespace == "nova-services"
    assert {k: v for k, v in test_pod["metadata"]["labels"].items() if k != "nova.io/tested-service"}.items() \
        <= labels.items()
    assert "annotations" not in pod["metadata"], "the client pod is no helm hook"
    spec = pod["spec"]
    assert spec["securityContext"] == test_pod["spec"]["securityContext"]
    assert spec["activeDeadlineSeconds"] > 0 and spec["automountServiceAccountToken"] is False
    redis_image = next(c["image"] for c in inv.redis.spec["template"]["spec"]["containers"] if c["name"] == "redis")
    assert {(x["name"], x["image"]) for x in spec["containers"]} == {
        ("redis", redis_image), ("psql", "docker.io/library/postgres:16-alpine")}
    for x in spec["containers"]:
        assert x["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert x["securityContext"]["allowPrivilegeEscalation"] is False


# ------------------------------------------------------------------------------------------- traffic in
# The same model, from outside the release: the ingress controller's and the Gateway's pods (identities taken
# from the rendered values' networkPolicy.ingressController / gatewayController examples) reach exactly the http
# ports of the exposed services, and nothing else of the render (Redis, Sentinel, PostgreSQL, etcd, the metrics
# ports, the unexposed services).

INGRESS_NGINX: Pod = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx",
                                        "app.kubernetes.io/component": "controller"})
ENVOY_GATEWAY: Pod = ("envoy-gateway-system", {"app.kubernetes.io/managed-by": "envoy-gateway",
                                               "app.kubernetes.io/component": "proxy",
                                               "gateway.envoyproxy.io/owning-gateway-name": "public"})


def reachable(objs: list[KubeObject], src: Pod) -> set[tuple[str, str]]:
    """(workload, port name) of every listening container port of the render that ``src`` may open."""
    found: set[tuple[str, str]] = set()
    for o in objs:
        if o.kind not in {"Deployment", "StatefulSet", "DaemonSet"}:
            continue
        labels, pod_spec = _template(o["spec"])
        for c in pod_spec.get("containers") or []:
            for p in c.get("ports") or []:
                dst: Target = ((o.namespace or NAMESPACE, labels), p.get("name"), p["containerPort"])
                if verdict(objs, src, dst) is None:
                    found.add((o.name, str(p.get("name") or p["containerPort"])))
    return found


def test_the_ingress_controller_reaches_exactly_the_http_ports_of_the_exposed_services() -> None:
    objs = render(CHART, chart_files.profile_values("production"), namespace=NAMESPACE)
    exposed = {o.name for o in objs if o.kind == "Ingress"}
    assert exposed == {"nova-user-service", "nova-auth-service", "nova-streaming-api"}
    assert reachable(objs, INGRESS_NGINX) == {(name, "http") for name in exposed}
    # The controller's identity is namespace AND pod labels: either one alone reaches nothing.
    assert not reachable(objs, ("ingress-nginx", {"app": "something-else"}))
    assert not reachable(objs, ("default", INGRESS_NGINX[1]))
    # Production uses no HTTPRoute: the Gateway's pods are not admitted anywhere.
    assert not reachable(objs, ENVOY_GATEWAY)


def test_the_gateway_reaches_exactly_the_http_ports_of_the_services_with_an_httproute() -> None:
    objs = render(CHART, [CHART / "ci" / "render" / "httproute-values.yaml"], namespace=NAMESPACE)
    routed = {o.name for o in objs if o.kind == "HTTPRoute"}
    assert routed == {"nova-user-service", "nova-streaming-api"}
    assert reachable(objs, ENVOY_GATEWAY) == {(name, "http") for name in routed}
    assert not reachable(objs, INGRESS_NGINX)
