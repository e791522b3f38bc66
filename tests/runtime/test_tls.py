"""TLS required, on the real daemons started from the rendered charts (docs/tls.md).

PostgreSQL: the production profile of nova-postgres with tls.enabled (required), test certificates issued for the
rendered Certificate's names (tests/runtime/tls_harness.py). Plain connections are refused, verify-full with the CA
works and a foreign CA does not, replication streams over TLS, and a SIGKILL failover still loses no acknowledged
commit. Redis: nova-redis with tls.enabled: no plain port on Redis or Sentinel, rediss with the CA works, Sentinel
and HAProxy speak TLS, and a SIGKILL of the master fails over with no acknowledged write lost.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import CHARTS, render, require_binaries
from tests.runtime import netutil
from tests.runtime import pooler_harness as ph
from tests.runtime import postgres_harness as pgh
from tests.runtime import redis_harness as rh
from tests.runtime import tls_harness as th

pytestmark = pytest.mark.runtime

PG_PRODUCTION = pgh.CHART / "ci" / "production-values.yaml"
PG_TLS = ["tls.enabled=true", "tls.required=true", "tls.issuerRef.name=nova-ca", "tls.issuerRef.kind=ClusterIssuer",
          "etcd.tls.enabled=true", "pooler.enabled=true", f"pooler.port={netutil.port_for(6432)}"]
REDIS_TLS = ["tls.enabled=true", "tls.issuerRef.name=nova-ca", "tls.issuerRef.kind=ClusterIssuer"]


def _umbrella_script(name: str, into: Path) -> Path:
    """A helm-test script of the umbrella, from its rendered nova-scripts ConfigMap (never a copy)."""
    cm = next(o for o in render(CHARTS / "nova") if o.kind == "ConfigMap" and o.name == "nova-scripts")
    path = into / name
    path.write_text(cm["data"][name] + "\n")
    return path


def _run(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(path)], env={"PATH": os.environ["PATH"], "CHECK_ATTEMPTS": "1", **env},
                          capture_output=True, text=True, timeout=60, check=False)


def _psql(conninfo: str, password: str, sql: str = "SELECT 1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql], capture_output=True,
                          text=True, timeout=20, check=False,
                          env={"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"})


# ---------------------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg() -> Iterator[th.TLSCluster]:
    require_binaries(*pgh.BINARIES, *th.BINARIES, *th.PATRONI_HTTPS, "psql")
    cluster = th.postgres_cluster(pgh.render([PG_PRODUCTION], PG_TLS))
    with cluster:
        yield cluster


def _conninfo(cluster: th.TLSCluster, host: str, extra: str) -> tuple[str, str]:
    dsn = pgh.Cluster.superuser_dsn(cluster, host)  # without the TLS options TLSCluster adds
    password = cluster.secrets_flat()["superuser-password"]
    parts = [p for p in dsn.split() if not p.startswith("password=")]
    return " ".join([*parts, extra]), password


def test_postgres_refuses_a_plain_connection_when_tls_is_required(pg: th.TLSCluster) -> None:
    leader = pg.wait_healthy()
    conninfo, password = _conninfo(pg, pg.pg_pods[leader].ip, "sslmode=disable")
    proc = _psql(conninfo, password)
    assert proc.returncode != 0, proc.stdout
    assert "no pg_hba.conf entry" in proc.stderr and "no encryption" in proc.stderr, proc.stderr


def test_postgres_verify_full_with_the_ca_works_and_a_foreign_ca_is_refused(pg: th.TLSCluster,
                                                                         tmp_path: Path) -> None:
    leader = pg.wait_healthy()
    assert pg.ca_file is not None
    host = pg.pg_pods[leader].ip
    conninfo, password = _conninfo(pg, host, f"sslmode=verify-full sslrootcert={pg.ca_file}")
    proc = _psql(conninfo, password, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("t|TLSv1."), proc.stdout
    foreign = th.make_ca(tmp_path / "foreign", "someone-else")
    conninfo, password = _conninfo(pg, host, f"sslmode=verify-full sslrootcert={foreign.cert}")
    proc = _psql(conninfo, password)
    assert proc.returncode != 0 and "certificate verify failed" in proc.stderr, proc.stderr


def test_etcd_answers_only_tls_clients_with_a_certificate_and_patroni_is_one(pg: th.TLSCluster) -> None:
    pg.wait_healthy()  # Patroni holds its leader key in this etcd: its client certificate works
    assert pg.etcd_tls
    for i in range(len(pg.etcd_pods)):
        assert pg.etcd_get(i, "/health") == 200
        assert pg.etcd_get(i, "/health", scheme="http") in (0, 400), "etcd answered plain http"
        assert pg.etcd_get(i, "/health", client_cert=False) == 0, "etcd accepted a client without a certificate"
    cfg = yaml.safe_load((pg.config_dir(0) / "patroni.yml").read_text())["etcd3"]
    assert cfg["protocol"] == "https" and Path(cfg["cert"]).is_file(), cfg


def test_postgres_replication_streams_over_tls(pg: th.TLSCluster) -> None:
    leader = pg.wait_healthy()
    rows = pgh.query(pg.superuser_dsn(pg.pg_pods[leader].ip),
                     "SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
                     "ORDER BY 1")
    assert len(rows) == len(pg.pg_pods) - 1, rows
    assert all(ssl for _, ssl in rows), f"a replication connection without TLS: {rows}"


def test_helm_test_postgres_check_logs_in_with_verify_full_and_the_ca(pg: th.TLSCluster, tmp_path: Path) -> None:
    leader = pg.wait_healthy()
    replica = next(i for i in range(len(pg.pg_pods)) if i != leader)
    assert pg.ca_file is not None
    user = yaml.safe_load((pg.config_dir(0) / "patroni.yml").read_text())[
        "postgresql"]["authentication"]["superuser"]["username"]
    env = {"DATABASE_HOST": pg.pg_pods[leader].ip, "DATABASE_READ_HOST": pg.pg_pods[replica].ip,
           "DATABASE_PORT": str(pg.port("postgresql")), "DATABASE_NAME": "postgres", "DATABASE_USER": user,
           "DATABASE_PASSWORD": pg.secrets_flat()["superuser-password"],
           "DATABASE_SSLMODE": "verify-full", "DATABASE_SSLROOTCERT": str(pg.ca_file)}
    script = _umbrella_script("check-postgres.sh", tmp_path)
    ok = _run(script, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    foreign = th.make_ca(tmp_path / "foreign", "someone-else")
    refused = _run(script, {**env, "DATABASE_SSLROOTCERT": str(foreign.cert)})
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr, refused.stderr


def test_the_pooler_speaks_tls_both_ways_and_refuses_a_plain_client(pg: th.TLSCluster) -> None:
    """With TLS required the PgBouncer pooler takes TLS clients only (client_tls_sslmode=require, the chart's
    certificate, which names -pooler-rw) and reaches PostgreSQL, which accepts hostssl only, with verify-full."""
    require_binaries(ph.PGBOUNCER)
    tls_secret = th.certificate(pg.chart.objects)["spec"]["secretName"]
    result = pg.run_bootstrap(timeout=180, mounted_secrets={tls_secret: {  # the logins the pooler's auth_file lists
        "ca.crt": pg.server.ca.read_text(), "tls.crt": pg.server.cert.read_text(), "tls.key": pg.server.key.read_text()}})
    assert result["returncode"] == 0, result["stderr"]
    pooler = ph.Pooler(pg)
    th.place(pg.server, pooler.mounts["/etc/nova-tls"], pgh.OS_USER)
    with pooler:
        password = pg.secrets_flat()["user_service-password"]
        base = f"host={pooler.ip} port={pooler.port} dbname=nova_core user=user_service"
        plain = _psql(f"{base} sslmode=disable", password)
        assert plain.returncode != 0 and "SSL required" in plain.stderr, plain.stderr
        ok = _psql(f"{base} sslmode=verify-full sslrootcert={pg.ca_file}", password,
                   "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "user_service true", "the pooler's own connection to PostgreSQL is TLS too"


def test_postgres_failover_over_tls_loses_no_acknowledged_commit(pg: th.TLSCluster) -> None:
    pg.wait_healthy()
    result = pgh.kill_leader_under_writes(pg)
    assert result.new_leader != result.old_leader
    assert len(result.acked) > 50, result
    assert result.lost == [], f"{len(result.lost)} acknowledged commits lost"
    rejoin = pgh.wait_rejoined(pg, result.old_leader)
    assert rejoin["writable_seen"] is False and not rejoin["recloned"], rejoin
    assert pg.wait_healthy() == result.new_leader  # the third node reconnects to the new leader on its own time
    rows = pgh.query(pg.superuser_dsn(pg.pg_pods[result.new_leader].ip),
                     "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_replication r "
                     "JOIN pg_stat_ssl s USING (pid)")
    assert rows[0][0] == rows[0][1] == len(pg.pg_pods) - 1, rows
    print(f"postgres failover over TLS: {result.failover_s:.1f} s, {len(result.acked)} acked, 0 lost")


# ---------------------------------------------------------------------------------------------- Redis
@pytest.fixture(scope="module")
def rds() -> Iterator[th.TLSRedisHarness]:
    require_binaries(*rh.BINARIES, *th.BINARIES)
    harness = th.redis_cluster(REDIS_TLS)
    try:
        yield harness
    finally:
        harness.close()


def _plain(host: str, port: int, password: str | None) -> redis.Redis:
    # No retries: redis-py's default (3, with backoff up to 10 s) made each refused plain ping take seconds.
    return redis.Redis(host=host, port=port, password=password, socket_timeout=1, socket_connect_timeout=1,
                       retry=Retry(NoBackoff(), 0))


def _cli(args: list[str], password: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"REDISCLI_AUTH": password} if password else {})}
    return subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=10, check=False, env=env)


def test_redis_and_sentinel_refuse_plain_connections(rds: th.TLSRedisHarness) -> None:
    rds.wait_stable()
    for i, host in enumerate(rds.addresses):
        for port, password in ((rds.redis_port, rds.password), (rds.sentinel_port, rds.sentinel_password)):
            with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
                _plain(host, port, password).ping()
            proc = _cli(["-h", host, "-p", str(port), "PING"], password)
            assert "PONG" not in proc.stdout, f"pod {i} port {port} answered a plain redis-cli"
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        _plain(rds.proxy_address, rds.redis_port, rds.password).ping()


def test_redis_tls_with_the_ca_works_for_redis_sentinel_and_haproxy(rds: th.TLSRedisHarness) -> None:
    master = rds.wait_stable()
    assert rds.ca_file is not None
    host = rds.addresses[master]
    proc = _cli(["--tls", "--cacert", rds.ca_file, "-h", host, "-p", str(rds.redis_port), "PING"], rds.password)
    assert proc.stdout.strip() == "PONG", proc.stderr
    # HAProxy selects the master only after its checks of it and of the Sentinels' votes pass (over TLS):
    # "stable" above is the Sentinels' view, which can come first (a client then sees the connection closed).
    rh.wait_until(lambda: rds.proxy_selected() == [master], 30, f"HAProxy to select node{master} over TLS")
    assert rds.proxy_client().set("tls:probe", "1") is True  # through HAProxy: TLS in, TLS to the master
    assert rds.client(master).get("tls:probe") == "1"
    status = rds.proxy_status()
    assert [k for k, v in status.items() if v == "UP"] == [f"node{master}"], status
    for i in range(len(rds.addresses)):
        info = rds.client(i).info("replication")
        if i != master:
            assert info["master_link_status"] == "up", info
    foreign = th.make_ca(rds.workdir / "pki" / "foreign", "someone-else")
    proc = _cli(["--tls", "--cacert", str(foreign.cert), "-h", host, "-p", str(rds.redis_port), "PING"],
                rds.password)
    assert "PONG" not in proc.stdout, "a client that trusts another CA reached Redis"


def test_helm_test_redis_check_speaks_tls_to_haproxy_and_the_sentinels(rds: th.TLSRedisHarness,
                                                                       tmp_path: Path) -> None:
    rds.wait_stable()
    assert rds.ca_file is not None
    env = {"REDIS_TLS": "true", "REDIS_CA_FILE": rds.ca_file, "REDIS_HOST": rds.proxy_address,
           "REDIS_PORT": str(rds.redis_port), "REDIS_PASSWORD": rds.password or "",
           "REDIS_SENTINEL_PASSWORD": rds.sentinel_password or "", "REDIS_SENTINEL_MASTER": rds.master_set,
           "REDIS_SENTINEL_ADDRS": ",".join(f"{a}:{rds.sentinel_port}" for a in rds.addresses)}
    script = _umbrella_script("check-redis.sh", tmp_path)
    ok = _run(script, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "AUTH and PING ok" in ok.stdout and ok.stdout.count("knows master set") == len(rds.addresses), ok.stdout
    wrong = _run(script, {**env, "REDIS_PASSWORD": "not-the-password"})
    assert wrong.returncode == 1 and "refused" in wrong.stderr, wrong.stdout + wrong.stderr
    unknown = _run(script, {**env, "REDIS_SENTINEL_MASTER": "other"})
    assert unknown.returncode == 1 and "no master for other" in unknown.stderr, unknown.stderr
    foreign = th.make_ca(tmp_path / "foreign", "someone-else")
    untrusted = _run(script, {**env, "REDIS_CA_FILE": str(foreign.cert)})
    assert untrusted.returncode == 1, untrusted.stdout


def test_haproxy_verifies_the_redis_servers_against_its_ca(rds: th.TLSRedisHarness) -> None:
    """HAProxy restarted with another CA in its mounted ca.crt: its TLS checks fail, so no server is UP and no
    client connection reaches Redis; with the right CA back, the master is UP again."""
    master = rds.wait_stable()
    ca_file = rds.workdir / "proxy" / "tls" / "ca.crt"
    right = ca_file.read_bytes()
    foreign = th.make_ca(rds.workdir / "pki" / "proxy-foreign", "someone-else")
    try:
        rds.stop("proxy")
        ca_file.write_bytes(foreign.cert.read_bytes())
        rds.start_proxy()
        rh.wait_until(lambda: rds.proxy_status() and all(v != "UP" for v in rds.proxy_status().values()), 20,
                      "HAProxy's servers to stay DOWN with a foreign CA")
        time.sleep(2)  # several check intervals: still none UP
        assert all(v != "UP" for v in rds.proxy_status().values()), rds.proxy_status()
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            rds.proxy_client().ping()
    finally:
        rds.stop("proxy")
        ca_file.write_bytes(right)
        rds.start_proxy()
    rh.wait_until(lambda: rds.proxy_status().get(f"node{master}") == "UP", 20, "the master UP with the right CA")


def test_redis_failover_over_tls_loses_no_acknowledged_write(rds: th.TLSRedisHarness) -> None:
    result = rh.kill_master_and_measure(rds, "tls")
    assert result["new_master"] != result["old_master"]
    assert result["acked_writes"] >= 20, result
    assert result["acked_writes_lost"] == 0, result["lost_keys"]
    rh.wait_until(lambda: rds.proxy_status().get(f"node{result['new_master']}") == "UP", 30,
                  "HAProxy (TLS checks) to route to the new master")
    assert rds.proxy_client().set("tls:after", "1") is True
    print(f"redis failover over TLS: {result['failover_s']} s, {result['acked_writes']} acked, 0 lost")
