"""PostgreSQL fault matrix on real daemons started from the rendered production values (issue 11, point 5).

Usage: python bench/faults_postgres.py [FAULT ...]    (bench/faults.py imports FAULTS for 3 runs per fault)

The production values are the production profile's ``postgres`` block (values/production.yaml with its example
site overlay, tools/charts.py ``profile_values``) applied to charts/nova-postgres (synchronous mode, ttl 20,
loop_wait 5, retry_timeout 7, failsafe_mode on), with this host's PostgreSQL binDir and backups off (see
:func:`production_values`). One cluster (3 etcd, 3 Patroni + PostgreSQL 15,
tests/runtime/postgres_harness.py) is started on first use and shared by every fault; :func:`close` (also at
exit) stops it. ``FAULTS[name](run_index)`` runs one fault under load (tests/runtime/pg_faults.py) and returns
a dict with recovery_s, acked_lost, dual_write_window_s, endpoint_violations and fault-specific extras.
``etcd_quorum_lost_failsafe_off`` is the same fault with failsafe_mode switched off in the live /config (the
comparison behind the production choice). Run directly, each fault runs once and prints one JSON line; the
last line is a summary: {"backend": "postgres", "faults": N, "acked_lost": total, "max_dual_write_window_s",
"max_recovery_s", "goal_met"}. Exit 0 when no acknowledged write was lost and no two nodes accepted writes at
once, 1 when not, 2 on an error (the last line is then {"backend": "postgres", "error": ...}).
"""

from __future__ import annotations

import atexit
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.runtime import partition, pg_faults
from tests.runtime import postgres_harness as h
from tools import charts

_state: dict[str, Any] = {}


def production_values(directory: Path) -> Path:
    """The production profile's postgres block as a values file for charts/nova-postgres: the one place the fault
    runs render production. Two changes, for this host: ``postgresql.binDir`` is Debian's PostgreSQL here
    (h.HOST_BIN_DIR; the profile names the Percona image's /usr/pgsql-15/bin), and ``backup.enabled`` is false: the
    matrix measures failover, these runs start no pgBackRest sidecar and no S3 server, and with archiving on
    every segment's archive_command would fail against the overlay's placeholder endpoint while a re-cloned
    replica tried a pgBackRest restore before pg_basebackup, noise in the timings. Backups and restores with the
    same chart files are proven by tests/runtime/test_postgres_backup.py."""
    block = charts.merged_values(charts.profile_values("production"))["postgres"]
    block["postgresql"] = {**block.get("postgresql", {}), "binDir": h.HOST_BIN_DIR}
    block["backup"] = {**block.get("backup", {}), "enabled": False}
    path = directory / "production-postgres.yaml"
    path.write_text(yaml.safe_dump(block, sort_keys=False))
    return path


def _context() -> pg_faults.Context:
    if "ctx" not in _state:
        missing = h.missing_binaries()
        if missing:
            raise RuntimeError(f"missing {', '.join(missing)}: run `make setup`")
        with tempfile.TemporaryDirectory(prefix="nova-faults-values-") as tmp:
            objects = h.render([production_values(Path(tmp))])
        manager = pg_faults.context(objects)
        _state["manager"] = manager
        _state["ctx"] = manager.__enter__()
        atexit.register(close)
    return _state["ctx"]


def close() -> None:
    """Stop the shared cluster (idempotent)."""
    manager = _state.pop("manager", None)
    _state.pop("ctx", None)
    if manager is not None:
        manager.__exit__(None, None, None)


def _fault(name: str, **kwargs: Any) -> Callable[[int], dict[str, Any]]:
    def run(run_index: int) -> dict[str, Any]:
        return pg_faults.FAULTS[name](_context(), run_index, **kwargs)
    run.__name__ = name
    return run


FAULTS: dict[str, Callable[[int], dict[str, Any]]] = {name: _fault(name) for name in pg_faults.FAULTS}
FAULTS["etcd_quorum_lost_failsafe_off"] = _fault("etcd_quorum_lost", failsafe=False)
# Reported by bench/faults.py instead of run: the partition needs root, iptables and a cgroup v2 mount.
UNAVAILABLE: dict[str, str] = {}
if (why := partition.unavailable(cgroups=True)) is not None:
    UNAVAILABLE["leader_partitioned"] = why


def main(argv: list[str]) -> int:
    names = argv or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        message = f"unknown fault(s) {unknown}; known: {list(FAULTS)}"
        print(f"faults_postgres: {message}", file=sys.stderr)
        print(json.dumps({"backend": "postgres", "error": message, "faults": 0}))
        return 2
    results = []
    try:
        for name in names:
            result = FAULTS[name](1)
            results.append(result)
            print(json.dumps(result), flush=True)
    except Exception as exc:  # noqa: BLE001 - the last line is one JSON object on every path
        print(f"faults_postgres: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(json.dumps({"backend": "postgres", "error": f"{type(exc).__name__}: {exc}", "faults": len(results)}))
        return 2
    finally:
        close()
    lost = sum(r["acked_lost"] for r in results)
    window = max(r["dual_write_window_s"] for r in results)
    summary = {"backend": "postgres", "faults": len(results), "acked_lost": lost,
               "max_dual_write_window_s": window, "max_recovery_s": max(r["recovery_s"] for r in results),
               "endpoint_violations": sum(r["endpoint_violations"] for r in results),
               "goal_met": lost == 0 and window <= 0}
    print(json.dumps(summary), flush=True)
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
