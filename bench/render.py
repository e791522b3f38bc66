"""Benchmark: how long `helm template` of the umbrella takes, against one subchart, in one run.

Times (wall clock, and the CPU time helm itself used) N runs each of

    helm template nova charts/nova -f values/production.yaml -f values/examples/production-site.yaml
                                                  (the umbrella: five services, Redis, PostgreSQL, backups)
    helm template nova charts/nova-redis          (one subchart, the reference)

alternating the two after one warm-up run of each, with the helm that tools.helm finds (Helm 4 unless
--helm says otherwise). Each render must succeed and give objects, or the benchmark fails. The last line
printed is one JSON object with the medians (seconds), the umbrella/subchart ratio and the goal (umbrella
median under 0.25 s on Helm 4).

Usage: python bench/render.py [--runs N] [--helm PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import charts

PRODUCTION = charts.profile_values("production")  # the profile with its example site overlay
GOAL_S = 0.25


@dataclass(frozen=True)
class Case:
    label: str
    args: tuple[str, ...]


def cases() -> tuple[Case, Case]:
    return (
        Case("umbrella", ("template", "nova", str(ROOT / "charts" / "nova"),
                          *(a for f in PRODUCTION for a in ("-f", str(f))))),
        Case("subchart", ("template", "nova", str(ROOT / "charts" / "nova-redis"))),
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(helm: str, case: Case, go_env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one render; raises RuntimeError naming the case when helm fails.
    ``go_env``: Go runtime settings for helm (tools.helm.GO_RUNTIME); none means Go's defaults."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT")}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run([helm, *case.args], capture_output=True, text=True, check=False, cwd=ROOT,
                          env={**env, **(go_env or {}), "HELM_DEBUG": "false"})
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{case.label}: helm {' '.join(case.args)} failed: {proc.stderr.strip()}")
    if "\nkind: " not in proc.stdout:
        raise RuntimeError(f"{case.label}: helm {' '.join(case.args)} rendered no objects")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each render (default 15)")
    parser.add_argument("--helm", help="helm binary (default: what tools.helm finds, Helm 4)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.path.insert(0, str(ROOT))
    from tools import helm as helm_mod

    binary = args.helm or helm_mod.find_helm(4)
    version = helm_mod.version(binary)
    umbrella, subchart = cases()
    runs: dict[str, list[tuple[float, float]]] = {umbrella.label: [], subchart.label: [], "tools": []}
    for case in (umbrella, subchart):  # warm-up: page cache, first-exec costs
        timed(binary, case)
    for i in range(args.runs):
        for case in ((umbrella, subchart) if i % 2 == 0 else (subchart, umbrella)):
            runs[case.label].append(timed(binary, case))
        # the same umbrella render as tools.helm runs it (the linter, the tests): Go's GC held off
        runs["tools"].append(timed(binary, umbrella, helm_mod.GO_RUNTIME))
    medians = {label: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
               for label, r in runs.items()}
    for label, r in runs.items():
        print(f"{label} wall (s): {' '.join(f'{w:.3f}' for w, _ in r)}")
    (u_wall, u_cpu), (s_wall, s_cpu) = medians[umbrella.label], medians[subchart.label]
    t_wall, t_cpu = medians["tools"]
    result = {
        "bench": "render",
        "helm": version,
        "runs": args.runs,
        "umbrella": " ".join(["charts/nova", *(f"-f {f.relative_to(ROOT)}" for f in PRODUCTION)]),
        "subchart": "charts/nova-redis",
        "umbrella_s": round(u_wall, 4),
        "umbrella_cpu_s": round(u_cpu, 4),
        "subchart_s": round(s_wall, 4),
        "subchart_cpu_s": round(s_cpu, 4),
        "umbrella_tools_s": round(t_wall, 4),  # with tools.helm.GO_RUNTIME (GC held off)
        "umbrella_tools_cpu_s": round(t_cpu, 4),
        "go_runtime": " ".join(f"{k}={v}" for k, v in sorted(helm_mod.GO_RUNTIME.items())),
        "ratio": round(u_wall / s_wall, 2) if s_wall else None,
        "goal_s": GOAL_S,
        "goal_met": u_wall < GOAL_S if version.startswith("v4.") else None,  # the goal is Helm 4's
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _cli import run

    run(main, "render")
