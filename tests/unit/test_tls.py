"""TLS in transit (docs/tls.md), rendered: nova-postgres, nova-redis and the umbrella's wiring into the services.

Each render is made once (tests.conftest.render caches by arguments). The runtime proof (real daemons with these
rendered files and test certificates) is tests/runtime/test_tls.py.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.conftest import CHARTS, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

ROOT = CHARTS.parent
PG = CHARTS / "nova-postgres"
REDIS = CHARTS / "nova-redis"
NOVA = CHARTS / "nova"
ISSUER = ("tls.issuerRef.name=nova-ca", "tls.issuerRef.kind=ClusterIssuer")


def one(objs: list[KubeObject], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o.obj for o in objs if o.kind == kind and o.name.endswith(suffix)]
    assert len(found) == 1, f"expected one {kind} *{suffix}, found {[o.name for o in objs if o.kind == kind]}"
    return found[0]


def of_kind(objs: list[KubeObject], kind: str) -> list[dict[str, Any]]:
    return [o.obj for o in objs if o.kind == kind]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec["containers"] + pod_spec.get("initContainers", []) if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def volume(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in pod_spec["volumes"] if v["name"] == name)


def pg_render(*set_values: str) -> list[KubeObject]:
    return render(PG, [], list(set_values), namespace="nova-database")


def patroni(objs: list[KubeObject]) -> dict[str, Any]:
    cm = next(o.obj for o in objs if o.kind == "ConfigMap" and o.name.endswith("-patroni"))
    return yaml.safe_load(cm["data"]["patroni.yml"])


# ---------------------------------------------------------------------------------------------- nova-postgres
@pytest.fixture(scope="module")
def pg_required() -> list[KubeObject]:
    return pg_render("tls.enabled=true", *ISSUER)


def test_postgres_without_tls_renders_no_certificate_and_keeps_plain_rules() -> None:
    objs = pg_render()
    assert of_kind(objs, "Certificate") == []
    cfg = patroni(objs)["postgresql"]
    assert "host all all all scram-sha-256" in cfg["pg_hba"]
    assert not any(r.startswith("hostssl") for r in cfg["pg_hba"]) and "ssl" not in cfg["parameters"]


def test_postgres_tls_required_allows_only_hostssl_for_clients_and_replication(pg_required: list[KubeObject]) -> None:
    cfg = patroni(pg_required)["postgresql"]
    tcp = [r for r in cfg["pg_hba"] if not r.startswith("local")]
    assert tcp == ["hostssl replication replicator all scram-sha-256", "hostssl all all all scram-sha-256"], tcp
    assert cfg["parameters"]["ssl"] == "on"
    for key, name in (("ssl_cert_file", "tls.crt"), ("ssl_key_file", "tls.key"), ("ssl_ca_file", "ca.crt")):
        assert cfg["parameters"][key] == f"/etc/nova-tls/{name}"
    for user in ("superuser", "replication"):
        auth = cfg["authentication"][user]
        assert auth["sslmode"] == "verify-full" and auth["sslrootcert"] == "/etc/nova-tls/ca.crt", auth


def test_postgres_tls_parameters_are_pod_local_not_in_the_dcs_the_config_apply_job_patches(
        pg_required: list[KubeObject]) -> None:
    dcs = patroni(pg_required)["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert not {k for k in dcs if k.startswith("ssl")}, dcs
    desired = one(pg_required, "ConfigMap", "-config-apply")["data"]["desired.json"]
    assert '"ssl' not in desired


def test_postgres_tls_not_required_keeps_plain_rules_after_the_hostssl_ones() -> None:
    cfg = patroni(pg_render("tls.enabled=true", "tls.required=false", *ISSUER))["postgresql"]
    tcp = [r.split()[0] for r in cfg["pg_hba"] if not r.startswith("local")]
    assert tcp == ["hostssl", "hostssl", "host", "host"], cfg["pg_hba"]
    # Mid-migration a member without TLS may still be the primary: Patroni's own connections must reach it.
    assert {cfg["authentication"][u]["sslmode"] for u in ("superuser", "replication")} == {"prefer"}


def test_postgres_certificate_names_what_replicas_and_clients_connect_to(pg_required: list[KubeObject]) -> None:
    cert = one(pg_required, "Certificate")
    assert cert["apiVersion"] == "cert-manager.io/v1"
    spec = cert["spec"]
    names = set(spec["dnsNames"])
    sts = one(pg_required, "StatefulSet", "postgres")
    pod = sts["spec"]["template"]["spec"]
    assert spec["secretName"] == volume(pod, "tls")["secret"]["secretName"]
    assert spec["issuerRef"] == {"name": "nova-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    # Replication and pg_rewind connect to Patroni's connect_address: the pod's headless name, one per pod.
    connect = env(container(pod, "postgres"))["PATRONI_POSTGRESQL_CONNECT_ADDRESS"]
    host = connect.rsplit(":", 1)[0]
    assert host.startswith("$(POD_NAME).")
    for i in range(sts["spec"]["replicas"]):
        assert host.replace("$(POD_NAME)", f"{sts['metadata']['name']}-{i}") in names
    for svc in ("-primary", "-replicas"):
        name = one(pg_required, "Service", svc)["metadata"]["name"]
        assert f"{name}.nova-database.svc.cluster.local" in names and name in names
    assert "localhost" in names and spec["ipAddresses"] == ["127.0.0.1"]


def test_postgres_key_is_mounted_group_readable_only_and_the_jobs_get_the_ca_alone(
        pg_required: list[KubeObject]) -> None:
    pod = one(pg_required, "StatefulSet", "postgres")["spec"]["template"]["spec"]
    assert volume(pod, "tls")["secret"]["defaultMode"] == 0o440
    job = next(o.obj for o in pg_required if o.kind == "Job" and "-bootstrap-" in o.name)["spec"]["template"]["spec"]
    assert volume(job, "tls-ca")["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    boot = env(container(job, "bootstrap"))
    assert boot["PGSSLMODE"] == "verify-full" and boot["PGSSLROOTCERT"] == "/etc/nova-tls/ca.crt"


def test_postgres_exporter_verifies_the_server_with_tls_on() -> None:
    objs = pg_render("tls.enabled=true", *ISSUER, "metrics.enabled=true")
    pod = one(objs, "StatefulSet", "postgres")["spec"]["template"]["spec"]
    metrics = container(pod, "metrics")
    query = parse_qs(urlsplit("//" + env(metrics)["DATA_SOURCE_URI"]).query)
    assert query == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/nova-tls/ca.crt"]}
    assert {"name": "tls", "mountPath": "/etc/nova-tls", "readOnly": True} in metrics["volumeMounts"]


def test_postgres_existing_secret_replaces_the_certificate() -> None:
    objs = pg_render("tls.enabled=true", "tls.existingSecret=pg-server-tls")
    assert of_kind(objs, "Certificate") == []
    pod = one(objs, "StatefulSet", "postgres")["spec"]["template"]["spec"]
    assert volume(pod, "tls")["secret"]["secretName"] == "pg-server-tls"


def test_tls_without_issuer_or_existing_secret_fails_naming_both_keys() -> None:
    with pytest.raises(helm.HelmError, match=r"set tls\.issuerRef\.name .* or tls\.existingSecret"):
        helm.render(PG, set_values=["tls.enabled=true"], namespace="nova-database")


def test_etcd_tls_serves_both_ports_with_client_certificates_and_probes_a_plain_health_port() -> None:
    objs = pg_render("tls.enabled=true", *ISSUER, "etcd.tls.enabled=true")
    sts = one(objs, "StatefulSet", "-etcd")
    etcd = sts["spec"]["template"]["spec"]["containers"][0]
    args = dict(a.split("=", 1) for a in etcd["args"])
    for key in ("--listen-peer-urls", "--listen-client-urls", "--advertise-client-urls",
                "--initial-advertise-peer-urls"):
        assert args[key].startswith("https://"), key
    assert all(m.split("=", 1)[1].startswith("https://") for m in args["--initial-cluster"].split(","))
    assert args["--client-cert-auth"] == args["--peer-client-cert-auth"] == "true"
    assert args["--trusted-ca-file"] == args["--peer-trusted-ca-file"] == "/etc/nova-tls/ca.crt"
    assert args["--listen-metrics-urls"] == "http://0.0.0.0:2381"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert etcd[probe]["httpGet"]["port"] == "health", probe
    names = set(one(objs, "Certificate")["spec"]["dnsNames"])
    peer = sts["spec"]["serviceName"]
    for i in range(sts["spec"]["replicas"]):
        assert f"{sts['metadata']['name']}-{i}.{peer}.nova-database.svc.cluster.local" in names
    etcd3 = patroni(objs)["etcd3"]
    assert etcd3["protocol"] == "https" and etcd3["cacert"] == "/etc/nova-tls/ca.crt" and etcd3["cert"], etcd3
    # Off by default, even with the chart's TLS on: plain http as before.
    plain = one(pg_render("tls.enabled=true", *ISSUER), "StatefulSet", "-etcd")["spec"]["template"]["spec"]
    assert "volumes" not in plain and all("https" not in a for a in plain["containers"][0]["args"])


def test_etcd_tls_without_the_charts_certificate_fails_naming_tls_enabled() -> None:
    with pytest.raises(helm.HelmError, match=r"etcd\.tls\.enabled uses the chart's TLS certificate: set tls\.enabled=true"):
        helm.render(PG, set_values=["etcd.tls.enabled=true"], namespace="nova-database")


# ---------------------------------------------------------------------------------------------- nova-redis
@pytest.fixture(scope="module")
def redis_tls() -> list[KubeObject]:
    return render(REDIS, [], ["tls.enabled=true", *ISSUER], namespace="nova-redis")


def conf(objs: list[KubeObject], suffix: str, key: str) -> list[list[str]]:
    text = one(objs, "ConfigMap", suffix)["data"][key]
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_redis_and_sentinel_serve_tls_only_and_replicate_over_tls(redis_tls: list[KubeObject]) -> None:
    for key, port in (("redis.conf", "6379"), ("sentinel.conf", "26379")):
        lines = conf(redis_tls, "-config", key)
        assert ["port", "0"] in lines and ["tls-port", port] in lines, key
        assert ["tls-replication", "yes"] in lines and ["tls-auth-clients", "no"] in lines, key
        assert sum(1 for line in lines if line[0] == "port") == 1


def test_redis_certificate_names_the_pods_and_both_services(redis_tls: list[KubeObject]) -> None:
    names = set(one(redis_tls, "Certificate")["spec"]["dnsNames"])
    sts = one(redis_tls, "StatefulSet")
    headless = sts["spec"]["serviceName"]
    for i in range(sts["spec"]["replicas"]):
        assert f"{sts['metadata']['name']}-{i}.{headless}.nova-redis.svc.cluster.local" in names
    for svc in ("-master", "-sentinel"):
        name = one(redis_tls, "Service", svc)["metadata"]["name"]
        assert f"{name}.nova-redis.svc.cluster.local" in names
    for c in sts["spec"]["template"]["spec"]["containers"]:
        assert env(c).get("NOVA_REDIS_TLS_DIR") == "/etc/nova-tls", c["name"]


def test_haproxy_terminates_tls_and_checks_and_forwards_over_verified_tls(redis_tls: list[KubeObject]) -> None:
    lines = conf(redis_tls, "-master", "haproxy.cfg")
    binds = [line for line in lines if line[0] == "bind" and line[1].endswith(":6379")]
    assert binds and all("ssl" in b and '"${NOVA_TLS_DIR}/tls.crt"' in b for b in binds), binds
    servers = [line for line in lines if line[0] == "server"]
    nodes = [s for s in servers if s[1].startswith("node")]
    votes = [s for s in servers if s[1].startswith("sentinel")]  # one per Sentinel in each node<i>_votes backend
    assert (len(nodes), len(votes)) == (3, 9), servers
    for s in nodes:
        assert {"check-ssl", "ssl"} <= set(s) and s[s.index("verify") + 1] == "required", s
    for s in servers:  # every check (Redis and Sentinel) verifies the server against the CA
        assert "check-ssl" in s and s[s.index("verify") + 1] == "required", s
        assert s[s.index("ca-file") + 1] == '"${NOVA_TLS_DIR}/ca.crt"', s
    connects = [line for line in lines if line[:2] == ["tcp-check", "connect"]]
    to_daemons = [c for c in connects if "addr" not in c]  # the quorum step asks frontend health, plain, locally
    assert len(to_daemons) == 6 and all(c[-1] == "ssl" for c in to_daemons), connects
    assert all("ssl" not in c for c in connects if "addr" in c), connects
    proxy = one(redis_tls, "Deployment")["spec"]["template"]["spec"]
    items = {i["key"]: i["path"] for i in volume(proxy, "tls")["secret"]["items"]}
    assert items == {"tls.crt": "tls.crt", "tls.key": "tls.crt.key", "ca.crt": "ca.crt"}  # crt <f> loads <f>.key


def test_redis_exporter_uses_rediss_with_the_ca() -> None:
    objs = render(REDIS, [], ["tls.enabled=true", *ISSUER, "metrics.enabled=true"], namespace="nova-redis")
    metrics = container(one(objs, "StatefulSet")["spec"]["template"]["spec"], "metrics")
    assert env(metrics)["REDIS_ADDR"].startswith("rediss://127.0.0.1:")
    assert env(metrics)["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == "/etc/nova-tls/ca.crt"


# ---------------------------------------------------------------------------------------------- umbrella
@pytest.fixture(scope="module")
def production() -> list[KubeObject]:
    return render(NOVA, chart_files.profile_values("production"), namespace="nova-services")


def secret_data(obj: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def test_production_turns_tls_on_for_both_charts_from_one_cluster_issuer(production: list[KubeObject]) -> None:
    certs = {(c["metadata"]["namespace"], c["metadata"]["name"]): c["spec"] for c in of_kind(production, "Certificate")}
    assert set(certs) == {("nova-database", "postgres-tls"), ("nova-redis", "redis-tls"),
                          ("nova-services", "nova-services-tls")}
    assert {c["issuerRef"]["name"] for c in certs.values()} == {"nova-ca"}
    assert {c["issuerRef"]["kind"] for c in certs.values()} == {"ClusterIssuer"}
    hba = next(yaml.safe_load(o.obj["data"]["patroni.yml"]) for o in production
               if o.kind == "ConfigMap" and o.name.endswith("-patroni"))["postgresql"]["pg_hba"]
    assert not any(r.startswith("host ") for r in hba), hba


def test_services_get_verify_full_the_ca_and_rediss(production: list[KubeObject]) -> None:
    pg_names = set(one(production, "Certificate", "postgres-tls")["spec"]["dnsNames"])
    redis_names = set(one(production, "Certificate", "redis-tls")["spec"]["dnsNames"])
    deployments = [d for d in of_kind(production, "Deployment") if d["metadata"]["namespace"] == "nova-services"]
    assert len(deployments) == 5
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        e = env(c)
        assert e["DATABASE_SSLMODE"] == "verify-full" and e["DATABASE_SSLROOTCERT"] == "/etc/nova/ca/ca.crt"
        assert e["REDIS_TLS"] == "true" and e["REDIS_CA_FILE"] == "/etc/nova/ca/ca.crt"
        ca = volume(pod, "dependency-ca")["secret"]
        assert ca["secretName"] == "nova-services-tls" and ca["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
        assert {"name": "dependency-ca", "mountPath": "/etc/nova/ca", "readOnly": True} in c["volumeMounts"]
        secret = next(s for s in of_kind(production, "Secret")
                      if s["metadata"]["name"] == next(f["secretRef"]["name"] for f in c["envFrom"]
                                                       if "secretRef" in f))
        data = secret_data(secret)
        db = urlsplit(data["DATABASE_URL"])
        assert parse_qs(db.query) == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/nova/ca/ca.crt"]}
        assert db.hostname in pg_names and data["DATABASE_HOST"] in pg_names
        rd = urlsplit(data["REDIS_URL"])
        assert rd.scheme == "rediss" and rd.hostname in redis_names
        for addr in data["REDIS_SENTINEL_ADDRS"].split(","):
            assert addr.rsplit(":", 1)[0] in redis_names


def test_local_profile_leaves_tls_off() -> None:
    objs = render(NOVA, [ROOT / "values" / "local.yaml"], namespace="nova")
    assert of_kind(objs, "Certificate") == []
    for d in of_kind(objs, "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert not {"DATABASE_SSLMODE", "REDIS_TLS"} & set(env(c)), d["metadata"]["name"]


def test_umbrella_switch_without_issuer_fails_naming_the_global_key() -> None:
    with pytest.raises(helm.HelmError, match=r"or global\.tls\.issuerRef\.name in the umbrella"):
        helm.render(NOVA, set_values=["global.tls.enabled=true"], namespace="nova")
    # The subcharts have their Secrets: the services' CA still needs an issuer, or tls.caSecret.
    existing = ["redis.tls.existingSecret=redis-server-tls", "postgres.tls.existingSecret=pg-server-tls"]
    with pytest.raises(helm.HelmError, match=r"set global\.tls\.issuerRef\.name .* or tls\.caSecret"):
        helm.render(NOVA, set_values=["global.tls.enabled=true", *existing], namespace="nova")


def test_ca_secret_replaces_the_services_certificate_and_no_key_material_is_ever_rendered() -> None:
    values = ["global.tls.enabled=true", "redis.tls.existingSecret=redis-server-tls",
              "postgres.tls.existingSecret=pg-server-tls", "tls.caSecret=nova-ca-bundle"]
    objs = render(NOVA, [], values, namespace="nova")
    assert of_kind(objs, "Certificate") == []
    pod = next(d for d in of_kind(objs, "Deployment") if d["metadata"]["name"].endswith("user-service"))
    assert volume(pod["spec"]["template"]["spec"], "dependency-ca")["secret"]["secretName"] == "nova-ca-bundle"
    # Certificates come from cert-manager or existing Secrets only: no render holds a private key.
    for o in [*objs, *render(NOVA, chart_files.profile_values("production"), namespace="nova-services")]:
        if o.kind == "Secret":
            assert not {"tls.key", "ca.key"} & set(o.obj.get("data") or {}), o.name
