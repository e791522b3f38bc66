"""The PgBouncer pooler of nova-postgres and the database capacity budget of the umbrella (issue 15.2).

Rendered through real helm: the pooler's objects and ini, the services' wiring through it, the NetworkPolicies
that admit the services to the pooler and no longer to PostgreSQL, and the two capacity checks with their
messages. tests/runtime/test_pooler.py runs the same ini and start script with Debian's pgbouncer.
"""

from __future__ import annotations

import base64
import re
import subprocess
from typing import Any

import pytest

from tests.conftest import CHARTS, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

PG = CHARTS / "nova-postgres"
NOVA = CHARTS / "nova"


def one(objs: list[KubeObject], kind: str, name: str) -> KubeObject:
    found = [o for o in objs if o.kind == kind and o.name == name]
    assert len(found) == 1, f"{kind}/{name}: {[o.name for o in objs if o.kind == kind]}"
    return found[0]


def ini(objs: list[KubeObject], role: str = "rw", fullname: str = "nova-postgres") -> dict[str, dict[str, str]]:
    text = one(objs, "ConfigMap", f"{fullname}-pooler-{role}")["data"]["pgbouncer.ini"]
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line.strip()):
            current = sections.setdefault(m.group(1), {})
        elif "=" in line and not line.lstrip().startswith(";"):
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


def refusal(chart: Any, values: list[Any], set_values: list[str]) -> str:
    with pytest.raises(helm.HelmError) as err:
        helm.render(chart, values, set_values)
    return str(err.value)


def test_the_pooler_is_off_by_default_and_renders_every_object_of_a_role_when_on() -> None:
    assert not [o for o in render(PG) if "pooler" in o.name]
    objs = render(PG, set_values=["pooler.enabled=true", "pooler.readOnly.enabled=true", "pooler.replicas=1"])
    for role in ("rw", "ro"):
        name = f"nova-postgres-pooler-{role}"
        for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"):
            one(objs, kind, name)
        pod = one(objs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 998 and pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["command"] == ["/bin/sh", "/etc/pgbouncer/pooler-start.sh"]
        assert container["resources"]["limits"]["memory"]
        items = {i["key"] for v in pod["volumes"] if "secret" in v for i in v["secret"]["items"]}
        assert items == {f"{login}-password" for login in
                         ("user_service", "auth_service", "streaming_api", "messaging_service", "search_service")}


def test_the_ini_has_one_database_per_isolation_database_behind_the_roles_service() -> None:
    objs = render(PG, set_values=["pooler.enabled=true", "pooler.readOnly.enabled=true", "pooler.replicas=1"])
    rw, ro = ini(objs, "rw"), ini(objs, "ro")
    assert set(rw["databases"]) == {"nova_core", "nova_messaging", "nova_search"}
    assert rw["databases"]["nova_core"].startswith("host=nova-postgres-primary.default.svc.cluster.local port=5432")
    assert ro["databases"]["nova_search"].startswith("host=nova-postgres-replicas.default.svc.cluster.local")
    assert rw["pgbouncer"]["pool_mode"] == "transaction" and rw["pgbouncer"]["auth_type"] == "scram-sha-256"
    assert rw["pgbouncer"]["server_login_retry"] == "1"  # PgBouncer's 15 s would add to every failover


def test_extra_settings_reach_the_ini() -> None:
    objs = render(PG, set_values=["pooler.enabled=true", "pooler.extraSettings.max_prepared_statements=200"])
    assert ini(objs)["pgbouncer"]["max_prepared_statements"] == "200"


def test_the_start_script_passes_shellcheck() -> None:
    script = one(render(PG, set_values=["pooler.enabled=true"]), "ConfigMap", "nova-postgres-pooler-rw")
    proc = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script["data"]["pooler-start.sh"], text=True,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_the_pooler_server_connections_must_fit_max_connections_naming_the_keys() -> None:
    message = refusal(PG, [], ["pooler.enabled=true", "pooler.readOnly.enabled=true"])
    assert "the poolers may open 240 server connections" in message
    for key in ("pooler.replicas=2", "pooler.defaultPoolSize=10", "pooler.reservePoolSize=2",
                "postgresql.parameters.max_connections=200", "postgresql.reservedConnections=20", "= 177"):
        assert key in message, (key, message)
    # A cap per database brings the same layout within budget.
    assert render(PG, set_values=["pooler.enabled=true", "pooler.readOnly.enabled=true", "pooler.maxDbConnections=12"])


def _service_env(objs: list[KubeObject], service: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for o in objs:
        if o.kind == "Secret" and o.namespace == "nova-services" and o.name == f"nova-{service}":
            data.update({k: base64.b64decode(v).decode() for k, v in (o.get("data") or {}).items()})
            data.update(o.get("stringData") or {})
        if o.kind == "ConfigMap" and o.name == f"nova-{service}-config":
            data.update(o["data"])
    return data


def test_production_services_connect_through_the_pooler_with_separate_pool_sizes() -> None:
    objs = render(NOVA, chart_files.profile_values("production"))
    env = _service_env(objs, "user-service")
    assert env["DATABASE_HOST"] == "postgres-pooler-rw.nova-database.svc.cluster.local", env
    assert env["DATABASE_PORT"] == "6432"
    assert (env["HTTP_POOL_SIZE"], env["DATABASE_POOL_SIZE"], env["REDIS_POOL_SIZE"]) == ("50", "5", "10")


def test_with_the_pooler_the_services_reach_the_pooler_and_no_longer_postgresql() -> None:
    objs = render(NOVA, chart_files.profile_values("production"))
    direct = one(objs, "NetworkPolicy", "nova-postgres-clients")
    sql_peers = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                 for rule in direct["spec"]["ingress"] if {"port": "postgresql", "protocol": "TCP"} in rule["ports"]
                 for peer in rule["from"]}
    assert sql_peers == {"test"}, "only the helm test pods (which check the primary) still reach PostgreSQL"
    pooled = one(objs, "NetworkPolicy", "nova-pooler-rw-clients")
    rule, scrape = pooled["spec"]["ingress"]
    assert rule["ports"] == [{"port": "pgbouncer", "protocol": "TCP"}]
    # the monitoring namespace reaches the pooler's exporter, never PgBouncer's port (its admin console)
    assert scrape == {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                      "ports": [{"port": "metrics", "protocol": "TCP"}]}
    components = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]}
    assert components == {"user-service", "auth-service", "streaming-api", "messaging-service", "search-service",
                          "test"}
    own = one(objs, "NetworkPolicy", "postgres-pooler-rw")
    assert own["spec"]["ingress"] == [], "the umbrella names its clients itself; the subchart's default is off"
    user = one(objs, "NetworkPolicy", "nova-user-service")
    ports = {p["port"] for rule in user["spec"]["egress"] for p in rule.get("ports") or []}
    assert 6432 in ports and 5432 not in ports


def test_the_services_pools_must_fit_postgresql_without_a_pooler_naming_every_service() -> None:
    # Production's pools (170 connections) fit max_connections 200 even without the pooler; twice as large do not.
    assert render(NOVA, chart_files.profile_values("production"), ["postgres.pooler.enabled=false"])
    message = refusal(NOVA, chart_files.profile_values("production"), ["postgres.pooler.enabled=false",
                                                           "services.defaults.resilience.dbPoolSize=10"])
    assert "the services' pools may open 340 connections" in message
    assert "user-service 10 pods x 10" in message and "auth-service 6 pods x 10" in message
    assert "max_connections=200" in message and "postgres.pooler.enabled=true" in message


def test_the_services_pools_must_fit_the_poolers_clients_with_one_pooler_pod_lost() -> None:
    message = refusal(NOVA, chart_files.profile_values("production"), ["postgres.pooler.maxClientConn=100"])
    assert "postgres.pooler.maxClientConn=100 x (postgres.pooler.replicas=2 - 1) = 100" in message


@pytest.mark.parametrize("key", ["dbPoolSize", "redisPoolSize"])
def test_a_pool_size_below_one_is_refused_by_the_schema(key: str) -> None:
    message = refusal(NOVA, [], [f"services.defaults.resilience.{key}=0"])
    assert key in message and "minimum" in message


def test_with_metrics_each_pooler_pod_runs_an_exporter_that_reads_the_admin_console_as_the_stats_login() -> None:
    objs = render(PG, set_values=["pooler.enabled=true", "metrics.enabled=true", "metrics.assumeCRDs=true",
                                  "metrics.pooler.port=9300"])
    pod = one(objs, "Deployment", "nova-postgres-pooler-rw")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["pgbouncer", "metrics"]  # the runtime harness runs [0]
    exporter = pod["containers"][1]
    assert exporter["image"] == "quay.io/prometheuscommunity/pgbouncer-exporter:v0.12.1"
    assert exporter["args"] == ["--web.listen-address=:9300"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9300}]
    env = {e["name"]: e for e in exporter["env"]}
    assert env["PGBOUNCER_EXPORTER_CONNECTION_STRING"]["value"] == \
        "postgres://nova_metrics@127.0.0.1:6432/pgbouncer?sslmode=disable"
    ref = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    secret = one(objs, "Secret", ref["name"]).obj
    assert ref["key"] == "nova_metrics-password" and ref["key"] in (secret.get("data") or secret.get("stringData"))
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True and exporter["resources"]["limits"]["memory"]
    # the stats login is in auth_file (start script logins and mounted keys) and in stats_users, never admin_users
    start = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert start["NOVA_POOLER_LOGINS"].split()[-1] == "nova_metrics"
    items = {i["key"] for v in pod["volumes"] if "secret" in v for i in v["secret"]["items"]}
    assert "nova_metrics-password" in items
    settings = ini(objs)["pgbouncer"]
    assert settings["stats_users"] == "nova_metrics" and "admin_users" not in settings
    # its metrics Service and ServiceMonitor (job nova-postgres-pooler-rw-metrics, which the alerts select)
    svc = one(objs, "Service", "nova-postgres-pooler-rw-metrics").obj
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "pooler-rw"
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9300, "targetPort": "metrics"}]
    sm = one(objs, "ServiceMonitor", "nova-postgres-pooler-rw").obj
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "pooler-rw-metrics"
    # the scrapers (networkPolicy.metricsFrom) reach the exporter's port only, in a rule of their own; the
    # clients (pooler.allowFrom) keep theirs
    np = render(PG, set_values=["pooler.enabled=true", "metrics.enabled=true", "pooler.allowFrom[0].podSelector.matchLabels.a=b",
                                "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.m=n"])
    ingress = one(np, "NetworkPolicy", "nova-postgres-pooler-rw")["spec"]["ingress"]
    assert ingress == [{"from": [{"podSelector": {"matchLabels": {"a": "b"}}}], "ports": [{"port": "pgbouncer"}]},
                       {"from": [{"namespaceSelector": {"matchLabels": {"m": "n"}}}], "ports": [{"port": "metrics"}]}]
    rule = one(objs, "PrometheusRule", "nova-postgres").obj
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert 'job=~"nova-postgres-pooler-rw-metrics"' in exprs["NovaPostgresPoolerClientsWaiting"]


def test_without_metrics_the_pooler_has_no_stats_login_and_no_exporter() -> None:
    objs = render(PG, set_values=["pooler.enabled=true", "pooler.readOnly.enabled=true", "pooler.replicas=1"])
    for role in ("rw", "ro"):
        pod = one(objs, "Deployment", f"nova-postgres-pooler-{role}")["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["pgbouncer"]
        assert "nova_metrics" not in pod["containers"][0]["env"][0]["value"]
        assert "stats_users" not in ini(objs, role)["pgbouncer"]
    assert not [o for o in objs if o.name.endswith("-metrics")]
    with_ro = render(PG, set_values=["pooler.enabled=true", "pooler.readOnly.enabled=true", "pooler.replicas=1",
                                     "metrics.enabled=true", "metrics.assumeCRDs=true"])
    rule = one(with_ro, "PrometheusRule", "nova-postgres").obj
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert 'job=~"nova-postgres-pooler-rw-metrics|nova-postgres-pooler-ro-metrics"' in exprs["NovaPostgresPoolerMetricsDown"]
    one(with_ro, "Service", "nova-postgres-pooler-ro-metrics")
