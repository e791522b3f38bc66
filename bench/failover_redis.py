"""Redis failover benchmark on real daemons started from charts/nova-redis's rendered configs.

For each run: a fresh 3-pod cluster (redis + Sentinel per pod, HAProxy) with the chart's default values,
a writer that counts a write only when WAIT 1 confirms a replica has it, SIGKILL of the master pod
(redis and its Sentinel), and the time from the kill to the first acknowledged write on the new master.
Afterwards every acknowledged write is looked up on the new master.

Usage: python bench/failover.py redis [--runs N] [--set key=value ...]
Last line printed: one JSON object with failover_s (median), acked_writes_lost (total), kills, and more;
on every error path too (then with `error`, and a non-zero exit: 2 usage/render, 1 run failure).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime.netutil import BindError
from tests.runtime.redis_harness import (
    HarnessError,
    RedisHarness,
    kill_master_and_measure,
    missing_binaries,
    summarize,
)
from tests.runtime.redis_harness import started as start_harness
from tools import helm


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors end in the JSON line too, not in SystemExit(2)
        self.print_usage(sys.stderr)
        raise _UsageError(message)


def _fail(error: str, runs: list[dict[str, Any]], code: int) -> int:
    """Print the error on stderr and, as the last line, one JSON object naming it; return ``code``."""
    print(error, file=sys.stderr)
    print(json.dumps({"backend": "redis", "error": error, "kills": len(runs), "failover_s_all": [r["failover_s"] for r in runs],
                      "acked_writes_lost": sum(r["acked_writes_lost"] for r in runs)}, sort_keys=True), flush=True)
    return code


def main(argv: list[str]) -> int:
    """Run the benchmark; the last line printed is one JSON object on every path (``error`` set on failure)."""
    parser = _Parser(prog="python bench/failover.py redis", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kills to measure (default 3, at least 1)")
    parser.add_argument("--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
                        help="extra chart values (default: the chart's production defaults)")
    runs: list[dict[str, Any]] = []
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(f"usage: {exc}", runs, 2)
    except SystemExit as exc:  # --help
        print(json.dumps({"backend": "redis", "help": True, "kills": 0}), flush=True)
        return int(exc.code or 0)
    if args.runs < 1:
        return _fail("--runs must be at least 1", runs, 2)
    missing = missing_binaries()
    if missing:
        return _fail(f"missing {', '.join(missing)}: run `make setup` as root to install the test daemons", runs, 2)
    started = time.monotonic()
    down_after_ms = None
    for n in range(args.runs):
        try:
            # A new address block per run (and a new one again when a daemon cannot bind).
            with start_harness(lambda: RedisHarness(set_values=args.set_values), lambda h: h.start_all()) as h:
                down_after_ms = h.down_after_ms
                result = kill_master_and_measure(h, f"bench{n}")
        except helm.HelmError as exc:
            return _fail(f"render failed: {exc}", runs, 2)
        except (HarnessError, BindError) as exc:
            return _fail(f"run {n + 1}: {exc}", runs, 1)
        except KeyboardInterrupt:
            return _fail(f"run {n + 1}: interrupted", runs, 130)
        except Exception as exc:  # noqa: BLE001 - the JSON line must close every path, with the cause named
            return _fail(f"run {n + 1}: {type(exc).__name__}: {exc}", runs, 1)
        result.pop("log")
        runs.append(result)
        print(f"run {n + 1}: master pod {result['old_master']} killed, pod {result['new_master']} promoted, "
              f"writes acknowledged again after {result['failover_s']:.2f}s; "
              f"{result['acked_writes']} acknowledged writes, {result['acked_writes_lost']} lost", flush=True)
    summary = summarize(runs)
    summary.update({
        "backend": "redis",
        "down_after_ms": down_after_ms,
        "redis_version": shutil.which("redis-server") and _redis_version(),
        "wall_s": round(time.monotonic() - started, 1),
    })
    if summary["acked_writes_lost"]:
        summary["error"] = f"{summary['acked_writes_lost']} acknowledged writes lost"
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary["acked_writes_lost"] == 0 else 1


def _redis_version() -> str:
    import subprocess

    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    return next((p.split("=", 1)[1] for p in out.split() if p.startswith("v=")), "unknown")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
