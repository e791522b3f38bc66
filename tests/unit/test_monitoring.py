"""Monitoring objects of the three charts: ServiceMonitors that select real metrics ports, the CRD gate with
its GitOps opt-in and NOTES warning, NetworkPolicies that admit the scrapers to exactly the metrics ports,
dashboards that Grafana's sidecar can load, and the PromQL metric-name extractor the runtime test relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import helm_path, render
from tests.runtime.metrics_harness import dashboard_exprs, dashboard_panels, metric_names
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

ROOT = helm.REPO_ROOT
UMBRELLA = helm.CHARTS_DIR / "nova"
REDIS = helm.CHARTS_DIR / "nova-redis"
POSTGRES = helm.CHARTS_DIR / "nova-postgres"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
SM_API = "monitoring.coreos.com/v1/ServiceMonitor"
PR_API = "monitoring.coreos.com/v1/PrometheusRule"
MONITORING_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
DASHBOARDS = sorted(helm.CHARTS_DIR.glob("*/files/dashboards/*.json"))


@pytest.fixture(scope="module")
def production() -> list[KubeObject]:
    return render(UMBRELLA, PRODUCTION, namespace="nova-services")


def of(objs: list[KubeObject], kind: str) -> list[dict[str, Any]]:
    return [o.obj for o in objs if o.kind == kind]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pod_templates(objs: list[KubeObject]) -> list[dict[str, Any]]:
    return [{"namespace": w["metadata"]["namespace"], **w["spec"]["template"]}
            for w in of(objs, "StatefulSet") + of(objs, "Deployment")]


def container_ports(pod: dict[str, Any]) -> set[str]:
    return {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}


# ---- the extractor --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "names"), [
    ('redis_up{job="x"} == 0', {"redis_up"}),
    ("sum by (namespace, pod) (rate(a_total[5m])) / on(namespace) group_left(pod) b", {"a_total", "b"}),
    ("(count(redis_instance_info{role=\"master\"}) or vector(0)) < 1", {"redis_instance_info"}),
    ("histogram_quantile(0.99, sum by (le) (rate(x_bucket{a=~\"b|c\"}[$__rate_interval])))", {"x_bucket"}),
    ("time() - max(m{namespace=\"$namespace\"}) > 3600 or absent(m)", {"m"}),
    ('{__name__="weird:name", job="a"} offset 5m and ignoring(job) other', {"weird:name", "other"}),
    ("increase(c[10m]) > 0 unless d bool == 1e9", {"c", "d"}),
    ('max without (instance) (up{job="by"})', {"up"}),
])
def test_metric_names_reads_only_the_selected_metrics(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# ---- scrape targets -------------------------------------------------------------------------------------


def test_every_service_monitor_reaches_a_metrics_port_of_a_real_pod(production: list[KubeObject]) -> None:
    monitors = of(production, "ServiceMonitor")
    assert len(monitors) == 8  # services, Redis, Sentinel, HAProxy, postgres_exporter, Patroni, etcd, PgBouncer (pooler-rw)
    services = of(production, "Service")
    pods = pod_templates(production)
    for sm in monitors:
        ns = sm["metadata"]["namespace"]
        assert sm["spec"]["namespaceSelector"] == {"matchNames": [ns]}
        chosen = [s for s in services if s["metadata"]["namespace"] == ns
                  and selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert chosen, f"ServiceMonitor {sm['metadata']['name']} selects no Service"
        for endpoint in sm["spec"]["endpoints"]:
            for svc in chosen:
                port = next((p for p in svc["spec"]["ports"] if p["name"] == endpoint["port"]), None)
                assert port, f"{sm['metadata']['name']}: Service {svc['metadata']['name']} has no port {endpoint['port']}"
                backing = [p for p in pods if p["namespace"] == ns and selects(svc["spec"]["selector"], p["metadata"]["labels"])]
                assert backing and all(port["targetPort"] in container_ports(p) for p in backing), svc["metadata"]["name"]


def test_alert_selectors_name_jobs_that_a_service_monitor_scrapes(production: list[KubeObject]) -> None:
    """The Prometheus Operator sets job = the Service name; every job="..." in a rule must be one."""
    scraped = set()
    for sm in of(production, "ServiceMonitor"):
        ns = sm["metadata"]["namespace"]
        scraped |= {s["metadata"]["name"] for s in of(production, "Service") if s["metadata"]["namespace"] == ns
                    and selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])}
    used = set()
    for pr in of(production, "PrometheusRule"):
        for g in pr["spec"]["groups"]:
            for r in g["rules"]:
                for m in re.finditer(r'\bjob(=~?)"([^"]+)"', str(r["expr"])):  # not cronjob=
                    used |= set(m.group(2).split("|")) if m.group(1) == "=~" else {m.group(2)}
    assert used and used <= scraped, sorted(used - scraped)


def test_scrapers_reach_exactly_the_metrics_ports(production: list[KubeObject]) -> None:
    """Peers of networkPolicy.metricsFrom (the monitoring namespace) are admitted to the metrics ports and
    nothing else, and every port a metrics Service targets is admitted."""
    policies = of(production, "NetworkPolicy")
    services = of(production, "Service")
    for pod in pod_templates(production):
        labels, ns = pod["metadata"]["labels"], pod["namespace"]
        mine = [p for p in policies if p["metadata"]["namespace"] == ns
                and selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
        admitted = {port["port"] for p in mine for rule in p["spec"].get("ingress", [])
                    if MONITORING_PEER in rule.get("from", []) for port in rule["ports"]}
        targeted = {port["targetPort"] for s in services if s["metadata"]["namespace"] == ns
                    and s["metadata"]["name"].endswith("metrics") and selects(s["spec"]["selector"], labels)
                    for port in s["spec"]["ports"]}
        if labels.get("app.kubernetes.io/name") == "nova":
            targeted = {"metrics"}  # the services' Services carry the metrics port next to http
        for p in mine:
            for rule in p["spec"].get("ingress", []):
                if MONITORING_PEER in rule.get("from", []):
                    assert rule["from"] == [MONITORING_PEER], f"{p['metadata']['name']}: scrapers share a rule with {rule['from']}"
        assert admitted == targeted, f"{labels.get('app.kubernetes.io/component')}: admitted {admitted}, metrics {targeted}"


def label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector ({} selects everything) against a label set."""
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if not {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[op]:
            return False
    return True


def test_the_monitoring_namespace_reaches_nothing_but_metrics_ports(production: list[KubeObject]) -> None:
    """Every pod of the production profile is behind a NetworkPolicy (no pod is open by default), and no ingress
    rule, however broad its namespaceSelector, admits a pod of the monitoring namespace to a port that is not a
    metrics port (services: metrics; exporters: metrics, sentinel-metrics; Patroni's REST port for /metrics)."""
    monitoring = {"kubernetes.io/metadata.name": "monitoring"}
    allowed = {"metrics", "sentinel-metrics", "patroni"}
    policies = of(production, "NetworkPolicy")
    workloads = [(o.obj["metadata"]["namespace"], o.name, t["metadata"]["labels"]) for o in production
                 for t in [o.obj["spec"]["template"] if o.kind in ("Deployment", "StatefulSet", "Job") else
                           o.obj["spec"]["jobTemplate"]["spec"]["template"] if o.kind == "CronJob" else
                           o.obj if o.kind == "Pod" else None] if t is not None]
    assert len(workloads) > 10
    for ns, name, labels in workloads:
        mine = [p for p in policies if p["metadata"]["namespace"] == ns
                and label_selector_matches(p["spec"]["podSelector"], labels)
                and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
        assert mine, f"{ns}/{name}: no NetworkPolicy selects it, so every namespace reaches every port"
        for p in mine:
            for rule in p["spec"].get("ingress") or []:
                peers = rule.get("from") or [{"namespaceSelector": {}}]  # no from: every source
                reach = [peer for peer in peers if "namespaceSelector" in peer and
                         label_selector_matches(peer["namespaceSelector"], monitoring)]
                if reach:
                    ports = {str(port.get("port", "ALL")) for port in rule.get("ports") or [{}]}
                    assert ports <= allowed, f"{p['metadata']['name']}: {reach} reaches {ns}/{name} on {sorted(ports)}"


def test_label_selector_matching_follows_kubernetes() -> None:
    m = {"kubernetes.io/metadata.name": "monitoring"}
    assert label_selector_matches({}, m)
    assert label_selector_matches({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                         "values": ["nova-services"]}]}, m)
    assert not label_selector_matches({"matchLabels": {"kubernetes.io/metadata.name": "nova-services"}}, m)
    assert not label_selector_matches({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, m)


def test_monitors_and_rules_wait_for_the_crd_unless_assumed_and_notes_say_so(helm_major: int) -> None:
    on = ("metrics.enabled=true",)
    without = render(REDIS, set_values=on, major=helm_major)
    assert not [o for o in without if o.kind in ("ServiceMonitor", "PrometheusRule")]
    assert len([o for o in without if o.kind == "Service" and o.name.endswith("metrics")]) == 3
    with_crds = render(REDIS, set_values=on, major=helm_major, api_versions=(SM_API, PR_API))
    assert sorted(o.name for o in with_crds if o.kind == "ServiceMonitor") == [
        "nova-redis", "nova-redis-master", "nova-redis-sentinel"]
    assert [o.name for o in with_crds if o.kind == "PrometheusRule"] == ["nova-redis"]
    assumed = render(REDIS, set_values=(*on, "metrics.assumeCRDs=true"), major=helm_major)
    assert {o.name for o in assumed if o.kind == "ServiceMonitor"} == {o.name for o in with_crds if o.kind == "ServiceMonitor"}
    out = helm.run(["install", "nova", str(REDIS), "--dry-run=client", "--set", on[0]], helm=helm_path(helm_major))
    notes = out.split("NOTES:", 1)[1]
    assert "WARNING: metrics is on but the PrometheusRule and ServiceMonitor objects were\nNOT rendered" in notes
    assert "set metrics.assumeCRDs=true" in notes
    quiet = helm.run(["install", "nova", str(REDIS), "--dry-run=client", "--set", on[0], "--set", "metrics.assumeCRDs=true"],
                     helm=helm_path(helm_major))
    assert "WARNING: metrics" not in quiet.split("NOTES:", 1)[1]


def test_postgres_monitors_with_the_pooler_wait_for_the_crd_and_notes_say_so() -> None:
    on = ("metrics.enabled=true", "pooler.enabled=true")
    without = render(POSTGRES, set_values=on)
    assert not [o for o in without if o.kind in ("ServiceMonitor", "PrometheusRule")]
    assert "nova-postgres-pooler-rw-metrics" in {o.name for o in without if o.kind == "Service"}
    assumed = render(POSTGRES, set_values=(*on, "metrics.assumeCRDs=true"))
    assert sorted(o.name for o in assumed if o.kind == "ServiceMonitor") == [
        "nova-postgres", "nova-postgres-etcd", "nova-postgres-patroni", "nova-postgres-pooler-rw"]
    args = ["install", "nova", str(POSTGRES), "--dry-run=client"] + [a for v in on for a in ("--set", v)]
    notes = helm.run(args, helm=helm_path(4)).split("NOTES:", 1)[1]
    assert "WARNING: metrics is on but the PrometheusRule and ServiceMonitor objects were\nNOT rendered" in notes


def test_umbrella_switch_turns_every_chart_on_and_defaults_render_nothing() -> None:
    default = render(UMBRELLA, namespace="nova-services")
    assert not [o for o in default if o.kind in ("ServiceMonitor", "PrometheusRule")
                or (o.kind == "ConfigMap" and "-dashboard-" in o.name)]
    on = render(UMBRELLA, set_values=("global.metrics.enabled=true", "global.metrics.assumeCRDs=true"),
                namespace="nova-services")
    assert {o.obj["metadata"]["labels"]["helm.sh/chart"].rsplit("-", 1)[0] for o in on if o.kind == "PrometheusRule"} == {
        "nova", "nova-redis", "nova-postgres"}
    sts = {o.name: o.obj for o in on if o.kind == "StatefulSet"}
    assert "metrics" in [c["name"] for c in sts["nova-postgres"]["spec"]["template"]["spec"]["containers"]]
    assert "sentinel-metrics" in [c["name"] for c in sts["nova-redis"]["spec"]["template"]["spec"]["containers"]]
    secret = next(o.obj for o in on if o.kind == "Secret" and o.name == "nova-postgres-credentials")
    assert "nova_metrics-password" in (secret.get("data") or secret.get("stringData") or {})


def test_umbrella_notes_name_every_chart_whose_monitors_were_skipped() -> None:
    helm.dependency_build(UMBRELLA, helm=helm_path(4))
    out = helm.run(["install", "nova", str(UMBRELLA), "--dry-run=client", "--set", "global.metrics.enabled=true",
                    "--set", "postgres.metrics.assumeCRDs=true"], helm=helm_path(4))
    notes = out.split("NOTES:", 1)[1]
    assert "WARNING: metrics, redis.metrics are on but the PrometheusRule and ServiceMonitor objects were" in notes
    assert "set metrics.assumeCRDs=true, redis.metrics.assumeCRDs=true\n" in notes


@pytest.mark.parametrize(("key", "value", "message"), [
    ("metrics.prometheusRule.backupMetric", "not a metric", "backupMetric': 'not a metric' does not match pattern"),
    ("metrics.prometheusRule.runbookBaseUrl", "docs/runbooks", "runbookBaseUrl': 'docs/runbooks' does not match pattern"),
    ("metrics.prometheusRule.thresholds.connectionsPercent", "0", "connectionsPercent': minimum"),
    ("metrics.prometheusRule.thresholds.poolerWaitSeconds", "0", "poolerWaitSeconds': minimum"),
])
def test_bad_monitoring_values_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        helm.render(POSTGRES, set_values=[f"{key}={value}"], helm=helm_path(4))


def test_postgres_and_etcd_metrics_ports_follow_the_values() -> None:
    objs = render(POSTGRES, set_values=("metrics.enabled=true", "etcd.metricsPort=2999"))
    etcd = next(o.obj for o in objs if o.kind == "StatefulSet" and o.name == "nova-postgres-etcd")
    c = etcd["spec"]["template"]["spec"]["containers"][0]
    assert "--listen-metrics-urls=http://0.0.0.0:2999" in c["args"]
    assert {"name": "metrics", "containerPort": 2999} in c["ports"]
    pg = next(o.obj for o in objs if o.kind == "StatefulSet" and o.name == "nova-postgres")
    exporter = next(c for c in pg["spec"]["template"]["spec"]["containers"] if c["name"] == "metrics")
    env = {e["name"]: e.get("value") for e in exporter["env"]}
    queries = next(o.obj for o in objs if o.kind == "ConfigMap" and o.name == "nova-postgres-metrics")
    assert env["PG_EXPORTER_EXTEND_QUERY_PATH"] == "/etc/postgres-exporter/queries.yaml"
    assert "nova_database" in queries["data"]["queries.yaml"]
    off = render(POSTGRES)
    etcd_off = next(o.obj for o in off if o.kind == "StatefulSet" and o.name == "nova-postgres-etcd")
    assert not [a for a in etcd_off["spec"]["template"]["spec"]["containers"][0]["args"] if "metrics" in a]


def test_haproxy_exporter_frontend_only_with_metrics() -> None:
    def cfg(objs: list[KubeObject]) -> str:
        return next(o.obj for o in objs if o.kind == "ConfigMap" and o.name == "nova-redis-master")["data"]["haproxy.cfg"]
    on = cfg(render(REDIS, set_values=("metrics.enabled=true", "masterProxy.metricsPort=9999")))
    assert re.search(r"frontend prometheus\n    mode http\n    bind :9999\n    http-request use-service prometheus-exporter if \{ path /metrics \}", on)
    assert "prometheus" not in cfg(render(REDIS))


def seconds(duration: str) -> float:
    """A Go duration as the services read HTTP_REQUEST_TIMEOUT ("3s", "1500ms", "1m30s") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("profile", ["default", "production"])
def test_the_latency_alert_threshold_is_the_services_request_timeout(profile: str, production: list[KubeObject]) -> None:
    """Issue 13: "p99 latency above the 3 s request timeout". The threshold is a value of its own
    (metrics.prometheusRule.thresholds.latencyP99Seconds), so a profile that changes the services' timeout must
    change it too: in every shipped profile it equals each service's HTTP_REQUEST_TIMEOUT."""
    objs = production if profile == "production" else render(
        UMBRELLA, set_values=("global.metrics.enabled=true", "global.metrics.assumeCRDs=true"), namespace="nova-services")
    rule = next(r for o in objs if o.kind == "PrometheusRule" for g in o.obj["spec"]["groups"] for r in g["rules"]
                if r.get("alert") == "NovaServiceLatencyHigh")
    threshold = float(re.search(r">\s*([0-9.]+)\s*$", rule["expr"].strip()).group(1))
    timeouts = {o.name: seconds(str(o.obj["data"]["HTTP_REQUEST_TIMEOUT"])) for o in objs
                if o.kind == "ConfigMap" and "HTTP_REQUEST_TIMEOUT" in (o.obj.get("data") or {})}
    assert len(timeouts) == 5
    assert set(timeouts.values()) == {threshold}, f"latencyP99Seconds={threshold}, request timeouts {timeouts}"


def test_durations_are_read_like_go() -> None:
    assert seconds("3s") == 3 and seconds("1500ms") == 1.5 and seconds("1m30s") == 90
    with pytest.raises(AssertionError):
        seconds("3 seconds")


# ---- dashboards -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_is_loadable_by_grafana(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    panels = dashboard_panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names[:2] == ["datasource", "namespace"]
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"{path.name}: panel {p['title']} has no query"
        for t in p["targets"]:
            assert 'namespace="$namespace"' in t["expr"], f"{path.name}: {t['expr']} ignores the namespace variable"
            assert metric_names(t["expr"]), t["expr"]
    assert len(dashboard_exprs(path)) >= len(panels)


def test_dashboards_ship_as_sidecar_configmaps(production: list[KubeObject]) -> None:
    maps = {o.name: o.obj for o in production if o.kind == "ConfigMap" and "-dashboard-" in o.name}
    assert sorted(maps) == ["nova-dashboard-services", "postgres-dashboard-postgres", "redis-dashboard-redis"]
    for cm in maps.values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key, text), = cm["data"].items()
        assert key.endswith(".json") and json.loads(text)["uid"].startswith("nova-")
