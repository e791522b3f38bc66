"""Benchmark: wall time of `make test-unit` and `make test` (the whole suite) against issue 16's goals.

    python bench/suite.py [--runs 1] [--only unit|full]

Runs each target as a user would (from the repository root, `make` with its `setup` step) and reports,
per target, the median wall time over --runs, and for every run its wall and CPU time (make and all it
ran: pytest, its workers, helm, the daemons), exit code and pytest's result counts (passed, failed,
skipped ...) from its summary line; the machine's load average before each target says how much else ran, and
``reference_cpu_s`` how fast it runs at that moment: the CPU seconds of 10 renders of charts/nova-redis, taken just
before each run (the same tree has taken 20-40% longer on this kind of machine at one hour than at another, and
this says which runs to compare). Goals: `make test-unit` under 60 s, `make test` under 150 s. A failing run is
reported, not hidden: `ok` is false and the exit code is 1. The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import run

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / ".work"
TARGETS = {"unit": ("test-unit", 60.0), "full": ("test", 150.0)}
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)\b")


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line (``= 3 passed, 1 skipped in 2.0s =`` or ``-q``'s bare form)."""
    for line in reversed(output.splitlines()):
        found = COUNTS.findall(line)
        if found and " in " in line:
            return {("errors" if kind.startswith("error") else "warnings" if kind.startswith("warning") else kind):
                    int(n) for n, kind in found}
    return {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


REFERENCE_RENDERS = 10


def reference_cpu() -> float | None:
    """CPU seconds of REFERENCE_RENDERS ``helm template`` runs of charts/nova-redis (no render cache): a yardstick
    of the machine's speed right now. None before `make setup` has installed helm and the Python dependencies
    (the first target does that)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from tools import helm
    except ImportError:
        return None
    try:
        binary = helm.find_helm()
    except helm.HelmError:
        return None
    args = ["template", "nova", str(ROOT / "charts" / "nova-redis")]
    helm.run(args, helm=binary, context="the reference render")  # warm-up (page cache), not counted
    cpu = _children_cpu()
    for _ in range(REFERENCE_RENDERS):
        helm.run(args, helm=binary, context="the reference render")
    return _children_cpu() - cpu


def time_target(target: str) -> tuple[float, float, int, dict[str, int]]:
    """(wall seconds, CPU seconds of make and everything it ran, exit code, pytest counts) of one
    `make <target>`; its output goes to stderr."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(["make", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"suite-{target}.log"
    log.write_text(proc.stdout + proc.stderr)  # the whole output, to read a failure's traceback
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:] + f"(whole output: {log})\n")
    return seconds, _children_cpu() - cpu, proc.returncode, pytest_counts(proc.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="runs per target (median reported)")
    p.add_argument("--only", choices=sorted(TARGETS), help="time one target only")
    args = p.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    result: dict[str, Any] = {"bench": "suite"}
    ok = True
    for key in [args.only] if args.only else list(TARGETS):
        target, goal = TARGETS[key]
        load = round(os.getloadavg()[0], 2)
        references: list[float | None] = []
        runs = []
        for _ in range(args.runs):
            ref = reference_cpu()
            references.append(None if ref is None else round(ref, 2))
            runs.append(time_target(target))
        seconds = [round(s, 1) for s, _, _, _ in runs]
        codes = [c for _, _, c, _ in runs]
        median = statistics.median(seconds)
        result[key] = {"target": f"make {target}", "median_s": round(median, 1), "runs_s": seconds,
                       "cpu_s": [round(c, 1) for _, c, _, _ in runs], "exit_codes": codes,
                       "pytest": [counts for _, _, _, counts in runs], "goal_s": goal, "goal_met": median < goal,
                       "load_before": load, "reference_cpu_s": references}
        ok = ok and all(c == 0 for c in codes)
        print(f"make {target}: median {median:.1f} s over {args.runs} run(s) (goal < {goal:.0f} s), exit {codes}",
              flush=True)
    result["ok"] = ok
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    run(main, "suite")
