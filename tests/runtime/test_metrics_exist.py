"""Every metric an alert rule or a dashboard of nova-redis and nova-postgres reads exists on a real exporter, and
a real Prometheus evaluates every rule and dashboard query of the three charts without error.

One Redis cluster (redis_harness: 3 pods with Sentinel, HAProxy) and one PostgreSQL cluster (postgres_harness:
3 etcd members, 3 Patroni nodes, the bootstrap Job that creates the exporter's pg_monitor login), both rendered
with metrics on. On top: Debian's exporters started with the rendered exporter containers' environment (a
redis_exporter per Redis and per Sentinel, a postgres_exporter per PostgreSQL pod with the chart's extra
queries file), and the endpoints the daemons serve themselves (HAProxy's Prometheus frontend from the rendered
haproxy.cfg, Patroni's REST /metrics, etcd's --listen-metrics-urls port). Exporter versions differ from the
images' (Debian redis_exporter 1.45 vs the image's v1.62, postgres_exporter 0.11.1 vs v0.15.0, etcd 3.4.23 vs
v3.5.17, HAProxy 2.6 vs 2.8, Patroni 3.0.2 vs Spilo's 3.0): docs/observability.md lists, per metric, what was
checked here and what against the image version's source.

Metrics that only kube-state-metrics, the kubelet, the services, the backup tooling or the pooler's
pgbouncer_exporter export cannot be scraped here: EXTERNAL lists them with the documentation they were checked against, and a test fails when a rule or
dashboard reads a metric that is neither scraped nor listed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from tests.conftest import require_binaries
from tests.runtime import netutil, postgres_harness, redis_harness
from tests.runtime.metrics_harness import (
    POSTGRES_EXPORTER,
    PROMETHEUS,
    REDIS_EXPORTER,
    Exporter,
    Prometheus,
    Target,
    container_port,
    dashboard_exprs,
    grafana_to_promql,
    localize,
    metric_names,
    rule_exprs,
    rule_groups,
    wait_scrape,
)
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

pytestmark = pytest.mark.runtime

CHARTS = helm.CHARTS_DIR
DOCS_KSM = "https://github.com/kubernetes/kube-state-metrics/tree/v2.13.0/docs/metrics"
PGBOUNCER_EXPORTER = "https://github.com/prometheus-community/pgbouncer_exporter/blob/v0.12.1/collector.go"
# Metrics the charts' rules and dashboards read that no daemon here can export, with where each was checked.
EXTERNAL = {
    "kubelet_volume_stats_available_bytes": "kubelet, https://kubernetes.io/docs/reference/instrumentation/metrics/",
    "kubelet_volume_stats_capacity_bytes": "kubelet, https://kubernetes.io/docs/reference/instrumentation/metrics/",
    "kube_pod_container_status_restarts_total": f"kube-state-metrics, {DOCS_KSM}/workload/pod-metrics.md",
    "kube_horizontalpodautoscaler_status_current_replicas": f"kube-state-metrics, {DOCS_KSM}/workload/horizontalpodautoscaler-metrics.md",
    "kube_horizontalpodautoscaler_spec_max_replicas": f"kube-state-metrics, {DOCS_KSM}/workload/horizontalpodautoscaler-metrics.md",
    "kube_poddisruptionbudget_status_pod_disruptions_allowed": f"kube-state-metrics, {DOCS_KSM}/policy/poddisruptionbudget-metrics.md",
    "kube_deployment_spec_replicas": f"kube-state-metrics, {DOCS_KSM}/workload/deployment-metrics.md",
    "http_server_request_duration_seconds_bucket": "the services (OpenTelemetry http.server.request.duration, "
                                                   "https://opentelemetry.io/docs/specs/semconv/http/http-metrics/)",
    "http_server_request_duration_seconds_count": "the services (as above)",
    "resilience4j_retry_calls_total": "the services if they use Resilience4j, https://resilience4j.readme.io/docs/micrometer",
    "resilience4j_circuitbreaker_state": "the services if they use Resilience4j, https://resilience4j.readme.io/docs/micrometer",
    "kube_cronjob_status_last_successful_time": f"kube-state-metrics, {DOCS_KSM}/workload/cronjob-metrics.md "
                                                "(production's metrics.prometheusRule.backupMetric)",
    # The pooler's exporter: Debian has only a different (Python) PgBouncer exporter with other names, so these
    # were checked against prometheus-community/pgbouncer_exporter v0.12.1 (2a70ffdb35b6), collector.go
    # metricMaps (<namespace>_<SHOW command>_<metric>) and scrapeSuccessDesc; not scraped here.
    # tests/runtime/test_pooler.py proves the columns they come from on Debian's pgbouncer 1.18.
    **{name: f"pgbouncer_exporter v0.12.1 collector.go ({column}), {PGBOUNCER_EXPORTER}" for name, column in {
        "pgbouncer_up": "scrapeSuccessDesc",
        "pgbouncer_pools_client_maxwait_seconds": "SHOW POOLS maxwait",
        "pgbouncer_pools_client_active_connections": "SHOW POOLS cl_active",
        "pgbouncer_pools_client_waiting_connections": "SHOW POOLS cl_waiting",
        "pgbouncer_pools_server_active_connections": "SHOW POOLS sv_active",
        "pgbouncer_stats_totals_client_wait_seconds_total": "SHOW STATS_TOTALS wait_time",
    }.items()},
}
# Series Prometheus itself adds to every scrape.
PROMETHEUS_MADE = {"up"}
BINARIES = (*redis_harness.BINARIES, *postgres_harness.BINARIES, REDIS_EXPORTER, POSTGRES_EXPORTER, PROMETHEUS)


@dataclass
class Stack:
    """The daemons of one chart, its exporters and what one scrape of each target returned."""

    namespace: str
    objects: list[KubeObject]
    targets: list[Target] = field(default_factory=list)
    exporters: list[Exporter] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=dict)  # metric -> jobs it was scraped from

    def scrape_all(self, first_metric: dict[str, str]) -> None:
        for t in self.targets:
            got = wait_scrape(f"http://{t.address}{t.path}", first_metric[t.job])
            for name in got:
                self.seen.setdefault(name, set()).add(t.job)

    def stop(self) -> None:
        for e in self.exporters:
            e.stop()


def _service_port(objects: list[KubeObject], name: str) -> str:
    svc = next(o.obj for o in objects if o.kind == "Service" and o.name == name)
    return str(svc["spec"]["ports"][0]["targetPort"])


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def _redis_exporter_env(h: redis_harness.RedisHarness, container: str, address: str) -> dict[str, str]:
    spec = _container(h.pod_spec, container)
    env = {e["name"]: str(e["value"]) for e in spec["env"] if "value" in e}
    password = h.secret_env(container, "REDIS_PASSWORD")
    if password is not None:
        env["REDIS_PASSWORD"] = password
    return localize(env, address)


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis_harness.RedisHarness, Stack]]:
    require_binaries(*BINARIES)
    work = tmp_path_factory.mktemp("redis-metrics")
    values = ["metrics.enabled=true", "metrics.assumeCRDs=true", f"masterProxy.metricsPort={netutil.port_for(8405)}"]
    h = redis_harness.started(lambda: redis_harness.RedisHarness(set_values=values, workdir=work))
    stack = Stack(redis_harness.NAMESPACE, list(h.objects))
    try:
        full = h.fullname
        for i, address in enumerate(h.addresses):
            for container, job in (("metrics", f"{full}-metrics"), ("sentinel-metrics", f"{full}-sentinel-metrics")):
                env = _redis_exporter_env(h, container, address)
                port = container_port(_container(h.pod_spec, container), _service_port(stack.objects, job))
                exporter = Exporter(f"{container}-{i}", REDIS_EXPORTER, env, address, port, work / f"{container}-{i}.log")
                stack.exporters.append(exporter.start())
                stack.targets.append(Target(stack.namespace, job, h.pod_name(i), f"{address}:{port}"))
        proxy = next(o.obj for o in stack.objects if o.kind == "Deployment")["spec"]["template"]["spec"]
        port = container_port(_container(proxy, "haproxy"), _service_port(stack.objects, f"{full}-master-metrics"))
        stack.targets.append(Target(stack.namespace, f"{full}-master-metrics", f"{full}-master-0", f"{h.proxy_address}:{port}"))
        master = h.wait_stable()
        # One write refused for want of replicas, so the NOREPLICAS error counter exists (Redis creates an
        # errorstat entry on the first such error); then the chart's setting again.
        client = h.client(master)
        before = client.config_get("min-replicas-to-write")["min-replicas-to-write"]
        client.config_set("min-replicas-to-write", 9)
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            client.set("nova:metrics-test", "1")
        client.config_set("min-replicas-to-write", before)
        stack.scrape_all({f"{full}-metrics": "redis_instance_info", f"{full}-sentinel-metrics": "redis_sentinel_masters",
                          f"{full}-master-metrics": "haproxy_backend_active_servers"})
        yield h, stack
    finally:
        stack.stop()
        h.close()


@pytest.fixture(scope="module")
def postgres_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binaries(*BINARIES)
    objects = postgres_harness.render(set_values=["metrics.enabled=true", "metrics.assumeCRDs=true",
                                                  f"etcd.metricsPort={netutil.port_for(2381)}"])
    stack = Stack(postgres_harness.NAMESPACE, objects)
    work = tmp_path_factory.mktemp("postgres-metrics")
    with postgres_harness.running_cluster(objects) as cluster:
        try:
            result = cluster.run_bootstrap()
            assert result.get("returncode", 0) == 0, result
            full = cluster.pg_sts["metadata"]["name"]
            queries = work / "queries.yaml"
            queries.write_text(cluster.chart.configmap("-metrics")["queries.yaml"])
            spec = cluster.pg_sts["spec"]["template"]["spec"]
            exporter_spec = _container(spec, "metrics")
            secrets = cluster.secrets_flat()
            for pod in cluster.pg_pods:
                env: dict[str, str] = {}
                for e in exporter_spec["env"]:
                    if "value" in e:
                        env[e["name"]] = str(e["value"])
                    else:
                        env[e["name"]] = secrets[e["valueFrom"]["secretKeyRef"]["key"]]
                env["PG_EXPORTER_EXTEND_QUERY_PATH"] = str(queries)  # the mounted ConfigMap file
                port = container_port(exporter_spec, "metrics")
                exporter = Exporter(f"pg-{pod.name}", POSTGRES_EXPORTER, localize(env, pod.ip), pod.ip, port,
                                    work / f"{pod.name}-exporter.log")
                stack.exporters.append(exporter.start())
                stack.targets.append(Target(stack.namespace, f"{full}-metrics", pod.name, f"{pod.ip}:{port}"))
                stack.targets.append(Target(stack.namespace, f"{full}-patroni-metrics", pod.name,
                                            f"{pod.ip}:{cluster.port('patroni')}"))
            etcd_port = cluster.etcd_port("metrics")
            for pod in cluster.etcd_pods:
                stack.targets.append(Target(stack.namespace, f"{full}-etcd-metrics", pod.name, f"{pod.ip}:{etcd_port}"))
            stack.scrape_all({f"{full}-metrics": "nova_database_xid_age", f"{full}-patroni-metrics": "patroni_primary",
                              f"{full}-etcd-metrics": "etcd_server_has_leader"})
            yield stack
        finally:
            stack.stop()


def _dashboard_metrics(chart: str) -> dict[str, str]:
    out = {}
    for path in sorted((CHARTS / chart / "files" / "dashboards").glob("*.json")):
        out.update(dashboard_exprs(path))
    return out


def _missing(stack: Stack, chart: str) -> dict[str, list[str]]:
    exprs = {**rule_exprs(stack.objects), **_dashboard_metrics(chart)}
    assert len(exprs) > 10
    missing: dict[str, list[str]] = {}
    for where, expr in exprs.items():
        for name in metric_names(expr):
            if name not in stack.seen and name not in EXTERNAL and name not in PROMETHEUS_MADE:
                missing.setdefault(name, []).append(where)
    return missing


def test_every_metric_of_the_redis_rules_and_dashboard_is_exported(redis_stack: tuple[Any, Stack]) -> None:
    _, stack = redis_stack
    assert not _missing(stack, "nova-redis"), "read by a rule or dashboard but not exported"
    # the ones that only exist in some states were produced on purpose above
    assert {"redis_master_link_up", "redis_errors_total", "redis_sentinel_master_ckquorum_status"} <= set(stack.seen)


def test_every_metric_of_the_postgres_rules_and_dashboard_is_exported(postgres_stack: Stack) -> None:
    assert not _missing(postgres_stack, "nova-postgres"), "read by a rule or dashboard but not exported"
    assert {"nova_database_xid_age", "pg_stat_archiver_failed_count", "patroni_sync_standby",
            "etcd_disk_wal_fsync_duration_seconds_bucket"} <= set(postgres_stack.seen)


def test_external_metrics_are_exactly_the_unscrapable_ones(redis_stack: tuple[Any, Stack], postgres_stack: Stack) -> None:
    """EXTERNAL names nothing a daemon here exports, and every name a rule or dashboard of any chart reads is
    either scraped here, made by Prometheus, or in EXTERNAL."""
    seen = set(redis_stack[1].seen) | set(postgres_stack.seen)
    assert not set(EXTERNAL) & seen
    umbrella = helm.render(CHARTS / "nova", chart_files.profile_values("production"), namespace="nova-services")
    exprs = {**rule_exprs(umbrella), **_dashboard_metrics("nova"), **_dashboard_metrics("nova-redis"),
             **_dashboard_metrics("nova-postgres")}
    read = {n for e in exprs.values() for n in metric_names(e)}
    assert read - seen - PROMETHEUS_MADE == set(EXTERNAL)


@pytest.fixture(scope="module")
def prometheus(redis_stack: tuple[redis_harness.RedisHarness, Stack], postgres_stack: Stack,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    h, rstack = redis_stack
    address = h.block.host(200)
    umbrella = helm.render(CHARTS / "nova", chart_files.profile_values("production"), namespace="nova-services")
    services = [g for g in rule_groups(umbrella) if g["name"].startswith("nova-services.")]
    # The pooler's alerts (production runs the pooler; the runtime cluster here does not): evaluated without data.
    pooler = [{"name": "nova-postgres-pooler", "rules": [r for g in rule_groups(umbrella) for r in g["rules"]
                                                       if r.get("alert", "").startswith("NovaPostgresPooler")]}]
    assert len(pooler[0]["rules"]) == 2
    groups = [*rule_groups(rstack.objects), *rule_groups(postgres_stack.objects), *services, *pooler]
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), address, netutil.free_port(address),
                      [*rstack.targets, *postgres_stack.targets], groups)
    try:
        prom.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = prom.targets_health()
            if len(health) == len(prom.targets) and set(health.values()) == {"up"}:
                break
            time.sleep(0.3)
        assert set(prom.targets_health().values()) == {"up"}, prom.targets_health()
        # every rule evaluated again after every target had been scraped (+1 s: a full scrape interval)
        scraped = time.time() + 1
        while time.monotonic() < deadline + 30 and not prom.evaluated_since(scraped):
            time.sleep(0.3)
        yield prom
    finally:
        prom.stop()


def test_prometheus_evaluates_every_rule_and_dashboard_query(prometheus: Prometheus, redis_stack: tuple[Any, Stack],
                                                             postgres_stack: Stack) -> None:
    health = prometheus.rules_health()
    assert len(health) >= 25
    bad = {name: h for name, h in health.items() if h != ("ok", "")}
    assert not bad, bad
    assert {"NovaPostgresPoolerClientsWaiting", "NovaPostgresPoolerMetricsDown"} <= set(health)
    for chart, ns in (("nova-redis", redis_stack[1].namespace), ("nova-postgres", postgres_stack.namespace),
                      ("nova", "nova-services")):
        for where, expr in _dashboard_metrics(chart).items():
            try:
                prometheus.query(grafana_to_promql(expr, {"namespace": ns, "__rate_interval": "1m"}))
            except RuntimeError as exc:
                raise AssertionError(f"{where}: {exc}") from None
    # the healthy cluster fires nothing that says the cluster is broken
    firing = {a["labels"]["alertname"] for a in prometheus.alerts()}
    assert not firing & {"NovaRedisNoMaster", "NovaRedisMultipleMasters", "NovaPostgresNoLeader",
                         "NovaPostgresMultiplePrimaries", "NovaEtcdNoLeader", "NovaRedisMasterEndpointNoBackend"}, firing
    # and the selectors really select: one Redis master, one PostgreSQL primary, three etcd members up
    assert prometheus.query('count(redis_instance_info{namespace="nova-redis",job="nova-redis-metrics",role="master"})')[0]["value"][1] == "1"
    assert prometheus.query('sum(patroni_primary{namespace="nova-database",job="nova-postgres-patroni-metrics"})')[0]["value"][1] == "1"
    assert prometheus.query('count(up{namespace="nova-database",job="nova-postgres-etcd-metrics"} == 1)')[0]["value"][1] == "3"


def test_killing_the_redis_master_puts_the_no_master_alert_in_pending(prometheus: Prometheus,
                                                                       redis_stack: tuple[Any, Stack]) -> None:
    h, _ = redis_stack
    master = h.wait_stable()
    h.kill_pod(master)
    states: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "pending" not in states:
        states |= {a["state"] for a in prometheus.alerts() if a["labels"]["alertname"] == "NovaRedisNoMaster"}
        time.sleep(0.2)
    assert "pending" in states, "NovaRedisNoMaster never went pending after the master was killed"
    # Sentinel promotes a replica well within the alert's `for`, so it never fires and clears again; the
    # killed pod restarts (as the kubelet would) and rejoins as a replica.
    h.start_pod(master)
    h.wait_stable(timeout=60)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(a["labels"]["alertname"] == "NovaRedisNoMaster" for a in prometheus.alerts()):
        time.sleep(0.3)
    assert not [a for a in prometheus.alerts() if a["labels"]["alertname"] == "NovaRedisNoMaster"]
