"""Fault matrix on real daemons started from the charts' rendered files (issue 11, point 5).

Usage: python bench/faults.py [--runs 3] [--only redis|postgres] [--fault NAME]

Prints one JSON line per fault, then a summary JSON line (always the last line, errors included).

The faults come from one module per backend, imported lazily (a missing module is reported as not
available, the others still run): bench/faults_redis.py and bench/faults_postgres.py. A fault module provides

    FAULTS: dict[str, Callable[[int], dict]]

fault name -> function(run_index). Each call runs on a cluster started from the production values (Redis: a
fresh one per call; PostgreSQL: one shared by the calls, healthy again after each fault), injects the fault
once, cleans up, and returns the per-run result dict with at least these keys:

    recovery_s            float  time from the fault until writes are acknowledged again, as clients write
    acked_lost            int    acknowledged writes missing on the final primary/master
    dual_write_window_s   float  the longest window in which two nodes accepted writes
    endpoint_violations   int    samples (every 100 ms) in which the write endpoint selected two nodes or a
                                 non-primary

plus any extras (JSON values). A call raises to report a failed run (the matrix goes on with the next fault).
Optionally ``UNAVAILABLE: dict[str, str]``: faults that cannot run on this host -> why (e.g. no root for a
network partition); they are reported, not run.

Per-fault line: backend, fault, runs, recovery_s (per run), recovery_s_max, acked_lost (sum),
dual_write_window_s (max), endpoint_violations (sum), per_run (every run's dict), error (if a run failed).
Exit code: 0 when every selected fault ran with 0 acknowledged writes lost, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BACKENDS = {"redis": "faults_redis", "postgres": "faults_postgres"}
REQUIRED = ("recovery_s", "acked_lost", "dual_write_window_s", "endpoint_violations")
FaultFn = Callable[[int], dict[str, Any]]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors end in the JSON line too
        self.print_usage(sys.stderr)
        raise _UsageError(message)


def load(backend: str) -> tuple[ModuleType | None, str | None]:
    """The backend's fault module, or None and why it is not available (only its own absence is tolerated)."""
    name = BACKENDS[backend]
    try:
        return importlib.import_module(name), None
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None, f"bench/{name}.py does not exist"


def run_fault(backend: str, name: str, fn: FaultFn, runs: int) -> dict[str, Any]:
    """Run one fault ``runs`` times; the per-fault line."""
    per_run: list[dict[str, Any]] = []
    error = None
    for n in range(runs):
        try:
            result = dict(fn(n))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is part of the matrix, with its cause
            error = f"run {n + 1}: {type(exc).__name__}: {str(exc)[:2000]}"
            print(f"{backend} {name}: {error}", file=sys.stderr, flush=True)
            break
        missing = [k for k in REQUIRED if k not in result]
        if missing:
            error = f"run {n + 1}: the result lacks {', '.join(missing)}"
            break
        per_run.append(result)
        print(f"{backend} {name} run {n + 1}: recovery {result['recovery_s']}s, {result['acked_lost']} acked lost, "
              f"dual-write window {result['dual_write_window_s']}s, {result['endpoint_violations']} endpoint violations",
              file=sys.stderr, flush=True)
    recovery = [r["recovery_s"] for r in per_run]
    line: dict[str, Any] = {
        "backend": backend,
        "fault": name,
        "runs": len(per_run),
        "recovery_s": recovery,
        "recovery_s_max": max((r for r in recovery if r is not None), default=None),
        "acked_lost": sum(int(r["acked_lost"]) for r in per_run),
        "dual_write_window_s": max((float(r["dual_write_window_s"]) for r in per_run), default=None),
        "endpoint_violations": sum(int(r["endpoint_violations"]) for r in per_run),
        "per_run": per_run,
    }
    if error:
        line["error"] = error
    return line


def main(argv: list[str]) -> int:
    parser = _Parser(prog="python bench/faults.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per fault (default 3)")
    parser.add_argument("--only", choices=sorted(BACKENDS), help="one backend only")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault (repeatable)")
    started = time.monotonic()
    try:
        args = parser.parse_args(argv)
        if args.runs < 1:
            raise _UsageError("--runs must be at least 1")
    except _UsageError as exc:
        print(f"usage: {exc}", file=sys.stderr)
        print(json.dumps({"bench": "faults", "error": f"usage: {exc}"}), flush=True)
        return 2
    except SystemExit as exc:  # --help
        print(json.dumps({"bench": "faults", "help": True}), flush=True)
        return int(exc.code or 0)

    backends = [args.only] if args.only else list(BACKENDS)
    modules: dict[str, ModuleType] = {}
    unavailable: dict[str, str] = {}
    for backend in backends:
        module, why = load(backend)
        if module is None:
            unavailable[backend] = str(why)
        else:
            modules[backend] = module
    selected: list[tuple[str, str, FaultFn]] = []
    for backend, module in modules.items():
        faults: dict[str, FaultFn] = module.FAULTS
        skip: dict[str, str] = getattr(module, "UNAVAILABLE", {})
        for name, fn in faults.items():
            if args.fault and name not in args.fault:
                continue
            if name in skip:
                unavailable[f"{backend}/{name}"] = skip[name]
            else:
                selected.append((backend, name, fn))
    known = {name for m in modules.values() for name in m.FAULTS}
    unknown = [f for f in args.fault if f not in known]
    if unknown:
        error = f"usage: unknown fault {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        print(error, file=sys.stderr)
        print(json.dumps({"bench": "faults", "error": error, "unavailable": unavailable}), flush=True)
        return 2
    for what, why in unavailable.items():
        print(json.dumps({"backend": what.split("/")[0], "fault": what.split("/", 1)[1] if "/" in what else None,
                          "runs": 0, "unavailable": why}), flush=True)

    lines = []
    try:
        for backend, name, fn in selected:
            line = run_fault(backend, name, fn, args.runs)
            lines.append(line)
            print(json.dumps(line, sort_keys=True), flush=True)
    except KeyboardInterrupt:
        print(json.dumps({"bench": "faults", "error": "interrupted", "faults_done": len(lines)}), flush=True)
        return 130
    failed = [f"{ln['backend']}/{ln['fault']}" for ln in lines if "error" in ln]
    lost = sum(ln["acked_lost"] for ln in lines)
    summary = {
        "bench": "faults",
        "faults": len(lines),
        "runs_per_fault": args.runs,
        "acked_lost": lost,
        "acked_lost_by_fault": {f"{ln['backend']}/{ln['fault']}": ln["acked_lost"] for ln in lines},
        "recovery_s_max_by_fault": {f"{ln['backend']}/{ln['fault']}": ln["recovery_s_max"] for ln in lines},
        "dual_write_window_s_max": max((ln["dual_write_window_s"] for ln in lines
                                        if ln["dual_write_window_s"] is not None), default=None),
        "endpoint_violations": sum(ln["endpoint_violations"] for ln in lines),
        "failed": failed,
        "unavailable": unavailable,
        "wall_s": round(time.monotonic() - started, 1),
    }
    if not lines:
        summary["error"] = "no fault ran" + (f" ({'; '.join(f'{k}: {v}' for k, v in unavailable.items())})"
                                             if unavailable else "")
    elif failed or lost:
        summary["error"] = "; ".join([*(f"{f} failed" for f in failed), *([f"{lost} acknowledged writes lost"] if lost else [])])
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if not failed and not lost and lines else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
