"""Redis failover benchmark on real daemons started from charts/nova-redis's rendered configs.

For each run: a fresh 3-pod cluster (redis + Sentinel per pod, HAProxy) with the chart's default values,
a writer that counts a write only when WAIT 1 confirms a replica has it, SIGKILL of the master pod
(redis and its Sentinel), and the time from the kill to the first acknowledged write on the new master.
Afterwards every acknowledged write is looked up on the new master.

Usage: python bench/failover.py redis [--runs N] [--set key=value ...]
Last line printed: one JSON object with failover_s (median), acked_writes_lost (total), kills, and more.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime.redis_harness import (
    HarnessError,
    RedisHarness,
    kill_master_and_measure,
    missing_binaries,
    summarize,
)
from tools import helm


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/failover.py redis", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kills to measure (default 3, at least 1)")
    parser.add_argument("--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
                        help="extra chart values (default: the chart's production defaults)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2
    missing = missing_binaries()
    if missing:
        print(f"missing {', '.join(missing)}: run `make setup` as root to install the test daemons", file=sys.stderr)
        return 2
    runs = []
    started = time.monotonic()
    for n in range(args.runs):
        try:
            with RedisHarness(set_values=args.set_values) as h:
                h.start_all()
                result = kill_master_and_measure(h, f"bench{n}")
        except helm.HelmError as exc:
            print(f"render failed: {exc}", file=sys.stderr)
            return 2
        except HarnessError as exc:
            print(f"run {n + 1}: {exc}", file=sys.stderr)
            return 1
        result.pop("log")
        runs.append(result)
        print(f"run {n + 1}: master pod {result['old_master']} killed, pod {result['new_master']} promoted, "
              f"writes acknowledged again after {result['failover_s']:.2f}s; "
              f"{result['acked_writes']} acknowledged writes, {result['acked_writes_lost']} lost", flush=True)
    summary = summarize(runs)
    summary.update({
        "backend": "redis",
        "down_after_ms": h.down_after_ms,
        "redis_version": shutil.which("redis-server") and _redis_version(),
        "wall_s": round(time.monotonic() - started, 1),
    })
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["acked_writes_lost"] == 0 else 1


def _redis_version() -> str:
    import subprocess

    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    return next((p.split("=", 1)[1] for p in out.split() if p.startswith("v=")), "unknown")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
