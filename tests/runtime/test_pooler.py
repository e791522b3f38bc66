"""The rendered PgBouncer pooler (Debian's pgbouncer 1.18) in front of a real Patroni cluster.

The chart's pgbouncer.ini and start script, unchanged but for addresses and mount paths (pooler_harness.py), in
front of three Patroni + PostgreSQL 15 nodes started from the same render, after the rendered bootstrap Job made
the isolation logins. Clients through the pooler keep committing across a Patroni failover (the pooler's new
server connections follow the -primary Service to the new leader), and a login still cannot reach another
service's database through it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_binaries
from tests.runtime import netutil
from tests.runtime import pooler_harness as ph
from tests.runtime import postgres_harness as h

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def objects() -> list[Any]:
    # metrics on: the pooler's auth_file and stats_users then carry the exporter's login (metrics.login)
    return h.render(set_values=["etcd.replicas=1", "pooler.enabled=true", "metrics.enabled=true",
                                f"pooler.port={netutil.port_for(6432)}"])


@pytest.fixture(scope="module")
def cluster(objects: list[Any]) -> Iterator[h.Cluster]:
    require_binaries(*h.BINARIES, ph.PGBOUNCER)
    with h.running_cluster(objects) as c:
        result = c.run_bootstrap(timeout=180)
        assert result["returncode"] == 0, result["stderr"]
        yield c


@pytest.fixture(scope="module")
def pooler(cluster: h.Cluster) -> Iterator[ph.Pooler]:
    with ph.Pooler(cluster) as p:
        yield p


def _query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    return h.query(dsn, sql)


def _execute(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def test_each_login_reaches_its_own_database_through_the_pooler_and_no_other(pooler: ph.Pooler) -> None:
    assert _query(pooler.dsn("user_service", "nova_core"), "select current_user, current_database()") == [
        ("user_service", "nova_core")]
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        _query(pooler.dsn("user_service", "nova_search"), "select 1")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed|SASL authentication"):
        _query(pooler.dsn("user_service", "nova_core").replace("password=", "password=x"), "select 1")
    # search_service's own schema is not readable by user_service even when both are in nova_core's pooler.
    _execute(pooler.dsn("search_service", "nova_search"), "create table if not exists search.probe (id int)")
    with pytest.raises(psycopg.OperationalError):
        _query(pooler.dsn("user_service", "nova_search"), "select * from search.probe")


def test_the_pooler_refuses_to_start_without_a_password_for_a_login(cluster: h.Cluster) -> None:
    pooler = ph.Pooler(cluster)
    (pooler.root / "secrets" / "user_service-password").unlink()
    proc = subprocess.run(h._as_user(pooler.command), env=pooler.env, cwd=pooler.root, capture_output=True,
                          text=True, timeout=20, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "no password for login user_service: the Secret needs the key user_service-password" in proc.stderr
    assert not (pooler.root / "run" / "userlist.txt").exists()


# What pgbouncer_exporter v0.12.1 runs on every scrape (collector.go at 2a70ffdb35b6: getDB's SHOW STATS, then
# queryVersion, SHOW LISTS, SHOW CONFIG, SHOW CLIENTS and the metricMaps SHOW DATABASES/STATS_TOTALS/POOLS; any
# failure makes pgbouncer_up 0), and the columns the chart's alerts and dashboard metrics come from.
EXPORTER_COMMANDS = ("SHOW STATS", "SHOW VERSION", "SHOW LISTS", "SHOW CONFIG", "SHOW CLIENTS", "SHOW DATABASES",
                     "SHOW STATS_TOTALS", "SHOW POOLS")
EXPORTER_COLUMNS = {"SHOW POOLS": {"database", "user", "cl_active", "cl_waiting", "sv_active", "maxwait"},
                    "SHOW STATS_TOTALS": {"database", "wait_time", "xact_count", "query_count"},
                    "SHOW CLIENTS": {"database", "user", "state"},
                    "SHOW DATABASES": {"name", "pool_size", "current_connections", "max_connections"}}


def _admin(conn: Any, command: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """One admin console command over the simple query protocol (the console knows no other)."""
    from psycopg import pq

    res = conn.pgconn.exec_(command.encode())
    if res.status != pq.ExecStatus.TUPLES_OK:
        raise RuntimeError(f"{command}: {(res.error_message or b'').decode().strip()}")
    names = [res.fname(i).decode() for i in range(res.nfields)]
    rows = [tuple((res.get_value(r, c) or b"").decode() for c in range(res.nfields)) for r in range(res.ntuples)]
    return names, rows


def test_the_exporters_stats_login_reads_the_admin_console_and_changes_nothing(cluster: h.Cluster,
                                                                               pooler: ph.Pooler) -> None:
    """The rendered exporter's connection string and PGPASSWORD key, against Debian's pgbouncer 1.18 started
    from the rendered ini: every command the exporter sends answers with the columns it maps; the login may not
    PAUSE or SHUTDOWN, and a service login may not use the console at all."""
    import psycopg

    spec = cluster.chart.component("Deployment", "pooler-rw")["spec"]["template"]["spec"]
    exporter = next(c for c in spec["containers"] if c["name"] == "metrics")
    env = {e["name"]: e for e in exporter["env"]}
    url = env["PGBOUNCER_EXPORTER_CONNECTION_STRING"]["value"]
    assert url.startswith(f"postgres://nova_metrics@127.0.0.1:{pooler.port}/pgbouncer")
    url = url.replace("127.0.0.1", pooler.ip)  # the pod's loopback is the pooler's address here
    password = cluster.secrets_flat()[env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"]]
    _query(pooler.dsn("user_service", "nova_core"), "select 1")  # a pool with a client, so SHOW POOLS has rows
    with psycopg.connect(url, password=password, autocommit=True, connect_timeout=3) as conn:
        for command in EXPORTER_COMMANDS:
            names, rows = _admin(conn, command)
            assert set(EXPORTER_COLUMNS.get(command, set())) <= set(names), (command, names)
        names, rows = _admin(conn, "SHOW POOLS")
        pools = {(r[names.index("database")], r[names.index("user")]) for r in rows}
        assert ("nova_core", "user_service") in pools, pools
        for command in ("PAUSE", "SHUTDOWN"):
            with pytest.raises(RuntimeError, match="admin access needed"):
                _admin(conn, command)
        assert _admin(conn, "SHOW VERSION")[1][0][0].startswith("PgBouncer 1.18")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed|SASL authentication"):
        psycopg.connect(url, password=password + "x", connect_timeout=3).close()
    with pytest.raises(psycopg.OperationalError, match="not allowed"):
        psycopg.connect(pooler.dsn("user_service", "pgbouncer")).close()
    # In auth_file the stats login could also ask for a pooled database; PostgreSQL's own grants refuse it there.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        _query(pooler.dsn("nova_metrics", "nova_core"), "select 1")


class PooledWriter(threading.Thread):
    """Commits one row per transaction through the pooler, reconnecting after an error; records acked ids and
    the longest gap between two acknowledged commits."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.acked: list[int] = []
        self.errors = 0
        self.longest_gap = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        next_id, last = 1, time.monotonic()
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                conn.execute("insert into users.acked (id) values (%s)", (next_id,))
                self.acked.append(next_id)
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last)
                last, next_id = now, next_id + 1
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                next_id += 1  # an unacknowledged id is never retried under the same number
                time.sleep(0.05)
            time.sleep(0.01)
        if conn is not None:
            conn.close()


def test_clients_through_the_pooler_keep_committing_across_a_patroni_failover(
        cluster: h.Cluster, pooler: ph.Pooler) -> None:
    dsn = pooler.dsn("user_service", "nova_core")
    _execute(dsn, "create table if not exists users.acked (id bigint primary key)")
    writer = PooledWriter(dsn)
    writer.start()
    time.sleep(2)
    # At least ten COMMITs through the pooler before the kill; the first login and a loaded machine can take 2 s.
    cluster.wait("ten commits through the pooler", lambda: len(writer.acked) > 10, 30, 0.05)
    before = len(writer.acked)
    old = cluster.leader()
    assert old is not None and before > 10
    killed = time.monotonic()
    cluster.kill_node(old)

    def new_leader() -> tuple[int] | None:  # a tuple: node 0 is a leader too
        n = cluster.leader()
        return (n,) if n not in (None, old) else None
    (new,) = cluster.wait("a new leader", new_leader, 90)
    elected = time.monotonic() - killed
    cluster.wait("commits through the pooler after the failover",
                 lambda: len(writer.acked) > before + 20 or None, 60)
    writer.stop.set()
    writer.join(10)
    stored = {r[0] for r in _query(cluster.superuser_dsn(cluster.pg_pods[new].ip, "nova_core"),
                                   "select id from users.acked")}
    lost = [i for i in writer.acked if i not in stored]
    assert not lost, f"{len(lost)} acknowledged commits through the pooler are missing on the new primary"
    ttl = int(yaml.safe_load(cluster.chart.configmap("-patroni")["patroni.yml"])["bootstrap"]["dcs"]["ttl"])
    assert elected < ttl + 15
    # Writes resume as soon as the new leader is there: the pooler's next server connection (retried after
    # pooler.serverLoginRetry) reaches it through the -primary Service; the pooler adds seconds, not a ttl.
    assert writer.longest_gap < elected + 5, (
        f"no commit through the pooler for {writer.longest_gap:.1f} s, the leader was there after {elected:.1f} s")
    print(f"pooler failover: leader elected after {elected:.1f} s, longest gap {writer.longest_gap:.1f} s, "
          f"{len(writer.acked)} acked, "
          f"{writer.errors} failed attempts, 0 lost")
