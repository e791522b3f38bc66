"""charts/nova placement and reachability: namespaces of the production profile, every cross-namespace address
names a Service that the render really has (port included), and NetworkPolicies select every pod and let each
service reach what it needs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import CHARTS, VALUES, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
LOCAL = VALUES / "local.yaml"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
PROFILES = list(chart_files.profiles(CHART))
PROFILE_IDS = [p.name for p in PROFILES]
SERVICES = {"auth-service", "messaging-service", "search-service", "streaming-api", "user-service"}


def pooled(objs: list[KubeObject]) -> bool:
    """Whether the services connect through nova-postgres's PgBouncer pooler (postgres.pooler.enabled)."""
    return any(o.kind == "Deployment" and o.name.endswith("-pooler-rw") for o in objs)


def decoded(secret: KubeObject) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def pod_templates(objs: list[KubeObject]) -> list[tuple[KubeObject, dict[str, str]]]:
    """(object, pod labels) of every pod the render creates (workloads, Jobs, bare Pods)."""
    out = []
    for o in objs:
        if o.kind == "Pod":
            out.append((o, o["metadata"].get("labels", {})))
        elif o.kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            out.append((o, o["spec"]["template"]["metadata"].get("labels", {})))
    return out


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and not selector.get(
        "matchExpressions")


def service_port(objs: list[KubeObject], host: str, port: int, domain: str = "cluster.local") -> KubeObject:
    """The Service that <name>.<namespace>.svc.<domain>:port names; fails when the render has none."""
    name, namespace, svc, rest = host.split(".", 3)
    assert svc == "svc" and rest == domain, host
    found = [o for o in objs if o.kind == "Service" and o.name == name and o.namespace == namespace]
    assert found, f"{host}: no Service {namespace}/{name} in the render"
    assert port in [p["port"] for p in found[0]["spec"]["ports"]], f"{host}:{port}: Service has no such port"
    return found[0]


# ---------------------------------------------------------------------------------------------- namespaces


def test_production_places_redis_database_and_services_in_their_namespaces(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    placed: dict[str, set[str]] = {}
    for o in objs:
        if o.kind == "Namespace":
            continue
        assert o.namespace, f"{o.ref} ({o.source}) has no explicit metadata.namespace"
        src = o.source or ""
        part = ("redis" if src.startswith("nova/charts/redis/") else
                "postgres" if src.startswith("nova/charts/postgres/") else "nova")
        placed.setdefault(part, set()).add(o.namespace)
    assert placed["redis"] == {"nova-redis"}
    assert placed["postgres"] == {"nova-database"}
    # The umbrella's own objects: services in nova-services, the generated subchart Secrets and the
    # dependency NetworkPolicies in the subcharts' namespaces.
    assert placed["nova"] == {"nova-services", "nova-redis", "nova-database"}
    for o in objs:
        if (o.source or "").startswith("nova/templates/services/"):
            assert o.namespace == "nova-services", o.ref
    etcd = [o for o in objs if o.kind == "StatefulSet" and "etcd" in o.name]
    assert etcd and all(o.namespace == "nova-database" for o in etcd)
    namespaces = sorted(o.name for o in objs if o.kind == "Namespace")
    assert namespaces == ["nova-database", "nova-redis", "nova-services"]


def test_the_release_namespace_is_never_rendered_as_a_namespace_object(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, namespace="nova-services", major=helm_major)
    assert sorted(o.name for o in objs if o.kind == "Namespace") == ["nova-database", "nova-redis"]


def test_by_default_everything_goes_in_the_release_namespace(helm_major: int) -> None:
    objs = render(CHART, [LOCAL], namespace="nova-dev", major=helm_major)
    assert {o.namespace for o in objs} == {"nova-dev"}
    assert not [o for o in objs if o.kind == "Namespace"]


@pytest.mark.parametrize("profile", [LOCAL, PRODUCTION[0], CHART / "ci" / "split-namespaces-values.yaml"],
                         ids=["local", "production", "split-namespaces"])
def test_every_address_a_service_receives_names_a_rendered_service_and_port(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    checked = 0
    for o in objs:
        if o.kind != "Secret" or o["metadata"]["labels"].get("app.kubernetes.io/component") not in SERVICES:
            continue
        data = decoded(o)
        db = service_port(objs, data["DATABASE_HOST"], int(data["DATABASE_PORT"]))
        ro = service_port(objs, data["DATABASE_READ_HOST"], int(data["DATABASE_PORT"]))
        if pooled(objs):  # one pooler port for both (no -pooler-ro in this profile)
            assert db.name.endswith("postgres-pooler-rw") and ro.name.endswith("postgres-pooler-rw")
        else:
            assert db.name.endswith("postgres-primary") and ro.name.endswith("postgres-replicas")
        master = service_port(objs, data["REDIS_HOST"], int(data["REDIS_PORT"]))
        assert master.name.endswith("redis-master")
        for addr in data["REDIS_SENTINEL_ADDRS"].split(","):
            host, port = addr.rsplit(":", 1)
            assert service_port(objs, host, int(port)).name.endswith("redis-sentinel")
        checked += 1
    for o in objs:
        if o.kind == "ConfigMap" and o.name.endswith("-config") and (o.source or "").startswith("nova/templates/"):
            for key, url in o["data"].items():
                if key.endswith("_URL"):
                    host, port = url.removeprefix("http://").rsplit(":", 1)
                    service_port(objs, host, int(port))
                    checked += 1
        if o.kind == "Deployment" and (o.source or "").startswith("nova/templates/"):
            for init in o["spec"]["template"]["spec"].get("initContainers", []):
                targets = next(e["value"] for e in init["env"] if e["name"] == "WAIT_FOR")
                for target in targets.split():
                    host, port = target.rsplit(":", 1)
                    service_port(objs, host, int(port))
                    checked += 1
    assert checked >= 5 + 5 + 5


def test_sentinel_master_set_matches_the_redis_chart(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, set_values=["redis.sentinel.masterSet=novaprod"], major=helm_major)
    data = decoded(next(o for o in objs if o.kind == "Secret" and o.name == "nova-user-service"))
    assert data["REDIS_SENTINEL_MASTER"] == "novaprod"


def test_a_custom_cluster_domain_reaches_every_address(helm_major: int) -> None:
    domain = ["clusterDomain=k8s.internal", "redis.clusterDomain=k8s.internal", "postgres.clusterDomain=k8s.internal"]
    objs = render(CHART, PRODUCTION, set_values=domain, major=helm_major)
    data = decoded(next(o for o in objs if o.kind == "Secret" and o.name == "nova-user-service"))
    assert data["DATABASE_HOST"] == "postgres-pooler-rw.nova-database.svc.k8s.internal"  # production pools
    assert data["REDIS_SENTINEL_ADDRS"] == "redis-sentinel.nova-redis.svc.k8s.internal:26379"


def test_a_cluster_domain_the_subcharts_do_not_share_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"clusterDomain=k8s\.internal but redis\.clusterDomain=cluster\.local"):
        render(CHART, set_values=["clusterDomain=k8s.internal"])


@pytest.mark.parametrize("pooler,database_port", [("false", 5440), ("true", 6440)], ids=["direct", "pooled"])
def test_ports_of_the_subcharts_reach_the_addresses_the_services_use(helm_major: int, pooler: str,
                                                                    database_port: int) -> None:
    objs = render(CHART, PRODUCTION, set_values=["redis.sentinel.port=26400", "redis.redis.port=6390",
                                                   "postgres.postgresql.port=5440", f"postgres.pooler.enabled={pooler}",
                                                   "postgres.pooler.port=6440"], major=helm_major)
    data = decoded(next(o for o in objs if o.kind == "Secret" and o.name == "nova-user-service"))
    assert data["REDIS_SENTINEL_ADDRS"].endswith(":26400") and data["REDIS_PORT"] == "6390"
    assert data["DATABASE_PORT"] == str(database_port)
    service_port(objs, data["REDIS_SENTINEL_ADDRS"].rsplit(":", 1)[0], 26400)
    service_port(objs, data["REDIS_HOST"], 6390)
    service_port(objs, data["DATABASE_HOST"], database_port)


# ---------------------------------------------------------------------------------------------- NetworkPolicies


def policies(objs: list[KubeObject]) -> list[KubeObject]:
    return [o for o in objs if o.kind == "NetworkPolicy"]


def peer_matches(peer: dict[str, Any], namespace: str, labels: dict[str, str], policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return False
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        ns_ok = namespace == policy_ns
    else:
        ns_ok = selects(ns_sel, {"kubernetes.io/metadata.name": namespace})
    pod_sel = peer.get("podSelector")
    return ns_ok and (pod_sel is None or selects(pod_sel, labels))


def egress_allowed(objs: list[KubeObject], src: tuple[str, dict[str, str]],
                   dst: tuple[str, dict[str, str]]) -> bool:
    """Some policy selecting the source pod lets it open a connection to the destination pod."""
    for pol in policies(objs):
        if pol.namespace == src[0] and selects(pol["spec"]["podSelector"], src[1]):
            for rule in pol["spec"].get("egress", []):
                if any(peer_matches(p, dst[0], dst[1], pol.namespace) for p in rule.get("to", [])):
                    return True
    return False


def ingress_allowed(objs: list[KubeObject], src: tuple[str, dict[str, str]],
                    dst: tuple[str, dict[str, str]], port: str | int | None = None) -> bool:
    """Ingress to dst from src (on `port`, a name or number, when given) is allowed: dst is selected by no
    ingress policy, or one has a rule that admits src on that port (a rule without ports admits all)."""
    selecting = [p for p in policies(objs) if p.namespace == dst[0] and selects(p["spec"]["podSelector"], dst[1])
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    for pol in selecting:
        for rule in pol["spec"].get("ingress", []):
            ports = [p.get("port") for p in rule.get("ports", [])]
            if port is not None and ports and port not in ports:
                continue
            if any(peer_matches(peer, src[0], src[1], pol.namespace) for peer in rule.get("from", [])):
                return True
    return False


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_pod_of_the_release_is_selected_by_a_network_policy(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    pols = policies(objs)
    assert pols
    for o, labels in pod_templates(objs):
        assert any(p.namespace == o.namespace and selects(p["spec"]["podSelector"], labels) for p in pols), (
            f"{o.ref} ({o.source}) is selected by no NetworkPolicy")


def test_the_default_deny_selects_every_pod_of_the_umbrella(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    deny = next(p for p in policies(objs) if p.name == "nova-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for o, labels in pod_templates(objs):
        if (o.source or "").startswith("nova/templates/"):
            assert selects(deny["spec"]["podSelector"], labels), o.ref


def test_services_reach_dns_redis_postgres_and_the_services_they_call(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    pods = {labels.get("app.kubernetes.io/component"): (o.namespace, labels)
            for o, labels in pod_templates(objs) if (o.source or "").startswith("nova/templates/services/")}
    redis = next((o.namespace, labels) for o, labels in pod_templates(objs)
                 if o.kind == "StatefulSet" and (o.source or "").startswith("nova/charts/redis/"))
    postgres = next((o.namespace, labels) for o, labels in pod_templates(objs)
                    if o.kind == "StatefulSet" and o.name == "postgres")
    pooler = dependency_pod(objs, "nova-postgres", "pooler-rw")  # production: the services go through it
    dns = ("kube-system", {"k8s-app": "kube-dns"})
    for name, pod in pods.items():
        assert egress_allowed(objs, pod, dns), name
        assert egress_allowed(objs, pod, redis) and ingress_allowed(objs, pod, redis), f"{name} -> redis"
        assert egress_allowed(objs, pod, pooler) and ingress_allowed(objs, pod, pooler), f"{name} -> pooler"
        assert not ingress_allowed(objs, pod, postgres, "postgresql"), f"{name} -> postgres, around the pooler"
    calls = {"user-service": {"auth-service"}, "auth-service": {"user-service"},
             "search-service": {"user-service", "auth-service"}, "streaming-api": {"user-service", "auth-service"},
             "messaging-service": {"user-service", "auth-service"}}
    for src, callees in calls.items():
        for dst, dst_pod in pods.items():
            allowed = egress_allowed(objs, pods[src], dst_pod) and ingress_allowed(objs, pods[src], dst_pod)
            assert allowed == (dst in callees), f"{src} -> {dst}: allowed={allowed}"
    # The test pods reach every service, Redis and PostgreSQL.
    test_pod = next((o.namespace, labels) for o, labels in pod_templates(objs) if o.kind == "Pod")
    for dst in [*pods.values(), redis, pooler]:
        assert egress_allowed(objs, test_pod, dst) and ingress_allowed(objs, test_pod, dst)
    # ... and PostgreSQL itself (the cluster tests check the primary and its failover directly).
    assert ingress_allowed(objs, test_pod, postgres, "postgresql")


def test_an_unrelated_pod_cannot_reach_the_data_ports_of_redis_postgres_or_a_service(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    stranger = ("nova-services", {"app": "something-else"})
    data_ports = ["http", "postgresql", "redis", "sentinel", "patroni", "client", "peer",
                  5432, 6379, 26379, 8008, 2379, 2380, 8080, 8081, 8082, 8084, 8086]
    for o, labels in pod_templates(objs):
        if o.kind in {"Deployment", "StatefulSet"}:
            for port in data_ports:
                assert not ingress_allowed(objs, stranger, (o.namespace, labels), port), f"{o.ref} port {port}"


def test_ingress_and_metrics_peers_are_allowed_only_to_their_ports(helm_major: int) -> None:
    objs = render(CHART, [CHART / "ci" / "split-namespaces-values.yaml"], major=helm_major)
    pol = next(p for p in policies(objs) if p.name == "nova-user-service")
    rules = pol["spec"]["ingress"]
    http = next(r for r in rules if r["ports"] == [{"port": "http", "protocol": "TCP"}])
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in http["from"]
    metrics = next(r for r in rules if r["ports"] == [{"port": "metrics", "protocol": "TCP"}])
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


# NetworkPolicies are additive: one rule without `ports` in any policy that selects a pod opens every port of
# that pod. These tests walk every pod and every container port of the local and production renders.
NP_PROFILES = pytest.mark.parametrize("profile", [LOCAL, PRODUCTION[0]], ids=["local", "production"])
MONITORING = ("monitoring", {"app.kubernetes.io/name": "prometheus"})


def container_ports(objs: list[KubeObject]) -> list[tuple[KubeObject, tuple[str, dict[str, str]],
                                                                   list[str | int]]]:
    """(object, (namespace, pod labels), [port names and numbers]) of every workload that listens."""
    out = []
    for o, labels in pod_templates(objs):
        spec = o["spec"] if o.kind == "Pod" else o["spec"]["template"]["spec"]
        ports: list[str | int] = []
        for c in spec.get("containers", []):
            for p in c.get("ports", []):
                ports += [p["containerPort"], *([p["name"]] if "name" in p else [])]
        if ports:
            out.append((o, (o.namespace, labels), ports))
    return out


def service_pods(objs: list[KubeObject]) -> dict[str, tuple[str, dict[str, str]]]:
    return {labels["app.kubernetes.io/component"]: (o.namespace, labels)
            for o, labels in pod_templates(objs) if (o.source or "").startswith("nova/templates/services/")}


def dependency_pod(objs: list[KubeObject], chart: str, component: str) -> tuple[str, dict[str, str]]:
    return next((o.namespace, labels) for o, labels in pod_templates(objs)
                if labels.get("app.kubernetes.io/name") == chart and labels.get("app.kubernetes.io/component") == component)


def egress_ports(objs: list[KubeObject], src: tuple[str, dict[str, str]],
                 dst: tuple[str, dict[str, str]]) -> set[str | int | None]:
    """Ports the source's egress rules open towards the destination pod (None: a rule without ports)."""
    found: set[str | int | None] = set()
    for pol in policies(objs):
        if pol.namespace == src[0] and selects(pol["spec"]["podSelector"], src[1]):
            for rule in pol["spec"].get("egress", []):
                if any(peer_matches(p, dst[0], dst[1], pol.namespace) for p in rule.get("to", [])):
                    found |= {p.get("port") for p in rule.get("ports", [])} or {None}
    return found


@NP_PROFILES
def test_no_service_or_monitoring_pod_reaches_etcd_or_the_patroni_rest_api(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    etcd = dependency_pod(objs, "nova-postgres", "etcd")
    postgres = dependency_pod(objs, "nova-postgres", "postgres")
    for name, pod in [*service_pods(objs).items(), ("monitoring", MONITORING)]:
        for port in ["client", "peer", 2379, 2380]:
            assert not ingress_allowed(objs, pod, etcd, port), f"{name} -> etcd {port}"
        for port in ["patroni", 8008]:
            # Monitoring scrapes Patroni's /metrics on its REST port when metrics are on (issue 13; the unsafe
            # endpoints need the rest-password); a service never reaches it.
            # (the scrape rule names the port, so only the name matches it here)
            scraping = name == "monitoring" and profile == PRODUCTION[0] and port == "patroni"
            assert ingress_allowed(objs, pod, postgres, port) == scraping, f"{name} -> patroni {port}"
        if name != "monitoring":
            # Egress of a service towards the database namespace names the PostgreSQL port only (the pooler's
            # when the services go through it).
            port = 6432 if pooled(objs) else 5432
            assert egress_ports(objs, pod, etcd) <= {port}, name
            assert egress_ports(objs, pod, postgres) == {port}, name


@NP_PROFILES
def test_services_reach_only_the_client_ports_of_redis_the_master_proxy_and_postgres(profile: str,
                                                                                     helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    redis = dependency_pod(objs, "nova-redis", "redis")
    proxy = dependency_pod(objs, "nova-redis", "master-proxy")
    postgres = dependency_pod(objs, "nova-postgres", "postgres")
    for name, pod in service_pods(objs).items():
        assert ingress_allowed(objs, pod, redis, "redis") and ingress_allowed(objs, pod, redis, "sentinel"), name
        assert ingress_allowed(objs, pod, proxy, "redis"), name
        if pooled(objs):
            pooler = dependency_pod(objs, "nova-postgres", "pooler-rw")
            assert ingress_allowed(objs, pod, pooler, "pgbouncer"), name
            assert not ingress_allowed(objs, pod, postgres, "postgresql"), name
        else:
            assert ingress_allowed(objs, pod, postgres, "postgresql"), name
        assert not ingress_allowed(objs, pod, redis, "metrics"), name
        assert not ingress_allowed(objs, pod, proxy, "health"), name
        assert egress_ports(objs, pod, redis) == {6379, 26379}, name


@NP_PROFILES
def test_a_nova_labelled_pod_in_another_namespace_reaches_no_redis_or_postgres_port(profile: str,
                                                                                    helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    impostors = [("intruder", labels) for labels in [*(pod[1] for pod in service_pods(objs).values()),
                                                     {"app.kubernetes.io/name": "nova"}]]
    checked = 0
    for o, dst, ports in container_ports(objs):
        if not (o.source or "").startswith(("nova/charts/redis/", "nova/charts/postgres/")):
            continue
        for impostor in impostors:
            for port in ports:
                assert not ingress_allowed(objs, impostor, dst, port), f"{impostor} -> {o.ref} {port}"
                checked += 1
    assert checked


@NP_PROFILES
def test_monitoring_reaches_only_metrics_ports(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    scraped = set()
    for o, dst, ports in container_ports(objs):
        for port in ports:
            if ingress_allowed(objs, MONITORING, dst, port):
                # the metrics ports: exporters, HAProxy's and etcd's `metrics`, the Sentinel exporter, Patroni's
                # REST port (its /metrics: issue 13)
                assert port in {"metrics", "sentinel-metrics", "patroni"}, f"monitoring -> {o.ref} port {port}"
                scraped.add(o.name)
    if profile == PRODUCTION[0]:
        # The spec's monitoring hooks: every service, Redis and Sentinel, HAProxy, PostgreSQL and Patroni, etcd,
        # and the PgBouncer pooler's exporter.
        assert scraped == {"redis", "redis-master", "postgres", "postgres-etcd", "postgres-pooler-rw",
                           *(f"nova-{s}" for s in SERVICES)}
    else:
        assert not scraped


def test_client_access_to_the_subcharts_survives_turning_off_the_services_policies(helm_major: int) -> None:
    objs = render(CHART, [LOCAL], set_values=["networkPolicy.enabled=false"], major=helm_major)
    assert not [p for p in policies(objs) if (p.source or "").startswith("nova/templates/services/")]
    user = ("default", {"app.kubernetes.io/name": "nova", "app.kubernetes.io/instance": "nova",
                        "app.kubernetes.io/component": "user-service"})
    assert ingress_allowed(objs, user, dependency_pod(objs, "nova-redis", "redis"), "sentinel")
    assert ingress_allowed(objs, user, dependency_pod(objs, "nova-postgres", "postgres"), "postgresql")
    # Without the umbrella's dependency policies, client access is whatever the subcharts' allowFrom says.
    objs = render(CHART, [LOCAL], set_values=["networkPolicy.dependencies=false",
                                             "redis.networkPolicy.allowFrom[0].podSelector.matchLabels.x=y"],
                  major=helm_major)
    assert not [p for p in policies(objs) if p.name.endswith("-clients")]
    assert not ingress_allowed(objs, user, dependency_pod(objs, "nova-postgres", "postgres"), "postgresql")
    assert ingress_allowed(objs, ("default", {"x": "y"}), dependency_pod(objs, "nova-redis", "redis"), "redis")
