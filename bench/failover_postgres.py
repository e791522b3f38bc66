"""PostgreSQL failover benchmark on real daemons started from the rendered production profile.

Usage: python bench/failover_postgres.py [--runs N] [--values FILE ...]   (or: python bench/failover.py postgres)

Starts 3 etcd members and 3 Patroni + PostgreSQL 15 nodes from `helm template charts/nova-postgres -f
ci/production-values.yaml` (tests/runtime/postgres_harness.py), then N times: write one COMMIT at a time
through the -primary Service, SIGKILL the leader's processes, measure until another node is the leader and the
-primary Service selects it, count acknowledged commits missing on the new leader, restart the killed node and
wait until it streams again as a replica. Throughout, both Services' endpoints (recorded labels + the rendered
readiness probe) are sampled every 100 ms (postgres_harness.RoutingSampler). The last line printed is one JSON
object: failover_s (median), failover_s_max, committed_lost (total), acked_commits, kills, rejoin_s (median),
rewinds, primary_empty_s (median over kills of the longest time -primary had no endpoint), routing_violations
(samples with two endpoints or a replica in -primary, or the primary in -replicas), routing_samples,
sample_period_s. Goal: failover_s under 30, committed_lost 0, routing_violations 0. Exit 0 when the goal is met, 1 when not, 2 on any error (render,
missing binaries, a daemon that does not come up); on every path the last line is one JSON object, errors as
{"backend": "postgres", "error": "...", "kills": N}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.runtime import postgres_harness as h
from tools import helm
from tools.manifest import KubeObject

TARGET_S = 30.0


def run_kills(objects: list[KubeObject], runs: int, failovers: list[float], rejoins: list[float], counters: dict[str, int],
              routing: dict[str, float]) -> None:
    with h.running_cluster(objects) as cluster, h.RoutingSampler(cluster, interval=0.1) as sampler:
        empties: list[float] = []
        for run in range(1, runs + 1):
            cluster.wait_healthy()
            started = time.monotonic()
            result = h.kill_leader_under_writes(cluster, table=f"bench_run_{run}")
            empties.append(sampler.longest(lambda s: not s.primary, since=started, until=time.monotonic()))
            failovers.append(result.failover_s)
            counters["lost"] += len(result.lost)
            counters["acked"] += len(result.acked)
            t = time.monotonic()
            observed = h.wait_rejoined(cluster, result.old_leader)
            rejoins.append(time.monotonic() - t)
            counters["rewinds"] += int(observed["rewind"] == "ran")
            print(f"run {run}: killed {cluster.pg_pods[result.old_leader].name}, new leader "
                  f"{cluster.pg_pods[result.new_leader].name} routed after {result.failover_s:.1f} s, "
                  f"{len(result.acked)} acked commits, {len(result.lost)} lost, rejoined as replica after "
                  f"{rejoins[-1]:.1f} s (pg_rewind: {observed['rewind']}, "
                  f"writable seen: {observed['writable_seen']}; -primary empty {empties[-1]:.1f} s)", flush=True)
        violations = sampler.violations()
        for line in violations[:10]:
            print(f"routing violation: {line}", flush=True)
        routing.update(primary_empty_s=statistics.median(empties), violations=len(violations),
                       samples=len(sampler.samples), period=sampler.period())


def fail(message: str, kills: int = 0, code: int = 2) -> int:
    """Report an error on stderr and as the last line (one JSON object); return the exit code."""
    print(f"failover_postgres: {message}", file=sys.stderr, flush=True)
    print(json.dumps({"backend": "postgres", "error": message, "kills": kills}), flush=True)
    return code


def measure(args: argparse.Namespace) -> int:
    if args.runs < 3:
        return fail("--runs must be at least 3")
    missing = h.missing_binaries()
    if missing:
        return fail(f"missing {', '.join(missing)}: run `make setup`")
    values = args.values or [str(h.CHART / "ci" / "production-values.yaml")]
    try:
        objects = h.render(values)
    except helm.HelmError as exc:
        return fail(f"render failed: {exc}")

    failovers: list[float] = []
    rejoins: list[float] = []
    counters = {"lost": 0, "acked": 0, "rewinds": 0}
    routing: dict[str, float] = {}
    started = time.monotonic()
    try:
        run_kills(objects, args.runs, failovers, rejoins, counters, routing)
    except Exception as exc:  # noqa: BLE001 - any failure still ends with the JSON line
        return fail(f"{type(exc).__name__}: {exc}", kills=len(failovers))
    lost, acked, rewinds = counters["lost"], counters["acked"], counters["rewinds"]
    summary = {
        "backend": "postgres",
        "failover_s": round(statistics.median(failovers), 2),
        "failover_s_max": round(max(failovers), 2),
        "committed_lost": lost,
        "acked_commits": acked,
        "kills": len(failovers),
        "rejoin_s": round(statistics.median(rejoins), 2),
        "rewinds": rewinds,
        "primary_empty_s": round(routing["primary_empty_s"], 2),
        "routing_violations": int(routing["violations"]),
        "routing_samples": int(routing["samples"]),
        "sample_period_s": round(routing["period"], 3),
        "target_s": TARGET_S,
        "total_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return 0 if summary["failover_s"] < TARGET_S and lost == 0 and summary["routing_violations"] == 0 else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="failover_postgres", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="number of leader kills (default 3, minimum 3)")
    parser.add_argument("--values", action="append", default=None,
                        help="values file (default: charts/nova-postgres/ci/production-values.yaml)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage; still end with the JSON line
        if exc.code in (0, None):
            raise
        return fail(f"bad arguments: {' '.join(argv)}")
    try:
        return measure(args)
    except KeyboardInterrupt:
        return fail("interrupted", code=130)
    except Exception as exc:  # noqa: BLE001 - a set-up error must still end with the JSON line
        return fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
