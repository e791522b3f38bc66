"""Backup and restore benchmark of charts/nova-postgres on real daemons (pgBackRest to a TLS S3 server).

Usage: python bench/restore.py [--size-mb N] [--load-s S]

Starts SeaweedFS (S3 over TLS on loopback) and a 2-pod Patroni cluster with backups on (tests/runtime/
backup_harness.py, the same rendered files the runtime tests use), then measures:

- load: ``N`` MB of table data written;
- backup: the rendered backup Job (full, from the standby): wall time and the repository's backup size;
- RPO under steady load with the chart's default archive_timeout (60 s): one COMMIT at a time for ``S`` seconds,
  sampling every second how far the newest commit is ahead of the newest archived WAL segment
  (pg_stat_archiver.last_archived_time); the worst sample is the data a lost primary *and* standby would cost
  (a lost primary alone costs nothing: synchronous replication);
- restore: a fresh cluster bootstrapped from the latest backup by restore.fromBackup (values only), time until
  its primary accepts writes and every row is there.

The last line printed is one JSON object: size_mb, db_bytes, backup_s, backup_repo_bytes, rpo_s_max,
rpo_s_median, restore_s, rows_equal. Errors: {"bench": "restore", "error": "..."} and exit 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml
from _cli import run

from tests.runtime import backup_harness as bh
from tests.runtime import postgres_harness as ph
from tests.runtime.s3_server import S3Server


def values(s3: S3Server, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "replicas": 2,
        "image": {"repository": "percona/percona-distribution-postgresql", "tag": "15.19"},
        "postgresql": {"binDir": "/usr/lib/postgresql/15/bin"},
        "backup": {"enabled": True, "repository": bh.repository_values(s3)},
    }
    out.update(extra)
    return out


def render(tmp: Path, name: str, vals: dict[str, Any]) -> list[Any]:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(vals))
    return ph.render([path])


def execute(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def rows(dsn: str) -> tuple[int, str]:
    r = ph.query(dsn, "SELECT count(*), md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM ledger")
    return int(r[0][0]), str(r[0][1])


def measure_rpo(cluster: bh.BackupCluster, seconds: float) -> list[float]:
    """Commit continuously; each second: newest commit time - last archived segment time (seconds)."""
    import psycopg

    dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            i = 10_000_000
            while not stop.is_set():
                conn.execute("INSERT INTO ledger (id) VALUES (%s)", (i,))
                i += 1
                time.sleep(0.01)
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(1)
            lag = ph.query(dsn, "SELECT extract(epoch FROM now() - coalesce(last_archived_time, now())) "
                                "FROM pg_stat_archiver")[0][0]
            samples.append(float(lag))
    finally:
        stop.set()
        writer.join(timeout=10)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--load-s", type=float, default=150.0, help="seconds of steady load for the RPO samples")
    args = ap.parse_args()
    if args.size_mb < 1 or args.load_s < 1:
        raise SystemExit("--size-mb and --load-s must be at least 1")
    missing = bh.missing_binaries()
    if missing:
        raise SystemExit(f"missing binaries: {', '.join(missing)}")
    result: dict[str, Any] = {"bench": "restore", "size_mb": args.size_mb}
    with tempfile.TemporaryDirectory(prefix="nova-bench-restore-") as tmpdir, bh.s3_server() as s3:
        tmp = Path(tmpdir)
        with bh.backup_cluster(render(tmp, "source", values(s3)), bh.s3_secrets(s3)) as cluster:
            dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
            execute(dsn, "CREATE TABLE ledger (id bigint PRIMARY KEY, pad text)")
            per_row = 1000
            count = args.size_mb * 1024 * 1024 // (per_row + 60)
            execute(dsn, f"INSERT INTO ledger SELECT g, repeat(md5(g::text), {per_row // 32}) "
                         f"FROM generate_series(1, {count}) g")
            result["db_bytes"] = int(ph.query(dsn, "SELECT pg_database_size('postgres')")[0][0])
            started = time.monotonic()
            job = cluster.run_backup_job("full", timeout=3600)
            result["backup_s"] = round(time.monotonic() - started, 1)
            print(f"backup: {result}", file=sys.stderr, flush=True)
            if job.returncode != 0:
                raise RuntimeError(f"backup Job failed: {job.output[-2000:]}")
            info = json.loads(cluster.pgbackrest(cluster.leader() or 0, "--stanza=nova-postgres", "--output=json",
                                                 "info").stdout)[0]
            result["backup_repo_bytes"] = int(info["backup"][-1]["info"]["repository"]["delta"])
            samples = measure_rpo(cluster, args.load_s)
            result["rpo_s_max"] = round(max(samples), 1)
            result["rpo_s_median"] = round(statistics.median(samples), 1)
            print(f"rpo: {result}", file=sys.stderr, flush=True)
            check = cluster.pgbackrest(cluster.leader() or 0, "--stanza=nova-postgres", "check")
            if check.returncode != 0:
                raise RuntimeError(check.stdout + check.stderr)
            expected = rows(dsn)
            cluster.stop()
        started = time.monotonic()
        restore = render(tmp, "restore", values(s3, restore={"fromBackup": True}))
        with bh.backup_cluster(restore, bh.s3_secrets(s3), wait=False) as restored:
            restored.wait("a restored primary", lambda: restored.leader() is not None, 3600, 0.5)
            leader = restored.leader() or 0
            result["restore_s"] = round(time.monotonic() - started, 1)
            result["rows_equal"] = rows(restored.superuser_dsn(restored.pg_pods[leader].ip)) == expected
    print(json.dumps(result), flush=True)
    return 0 if result["rows_equal"] else 1


if __name__ == "__main__":
    run(main, "restore")
