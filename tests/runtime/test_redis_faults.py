"""The Redis fault matrix (issue 11, point 5) on one run each, with the production values.

One cluster for the whole file: charts/nova-redis rendered with values/production.yaml's redis block, three pods
(redis + Sentinel) and HAProxy (the -master endpoint) started from the rendered files (redis_harness.py). As
root, each pod's processes connect from the pod's own address (partition.pod_sources) so that the partition
fault can cut pods apart by address pair. Each fault runs while a client writes through -master (acknowledged =
SET OK + WAIT 1), a probe writes straight to every node, and the -master endpoint set is sampled every 100 ms;
afterwards the cluster is restored (killed processes started again, partition healed) and settled, and the next
fault starts from there. bench/faults.py gives the figures over several fresh clusters.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_binaries
from tests.runtime import netutil, partition
from tests.runtime import redis_harness as rh
from tools.helm import REPO_ROOT

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rh.RedisHarness]:
    require_binaries(*rh.BINARIES)
    tmp = tmp_path_factory.mktemp("redis-faults")
    values = rh.production_values(tmp)
    sources = partition.unavailable() is None
    h = rh.started(lambda: rh.RedisHarness(values=[values], pod_sources=sources, workdir=tmp))
    try:
        yield h
    finally:
        h.close()
        if sources:
            assert partition.leftover_rules() == [], "iptables rules of this run left behind"


def check_goal(h: rh.RedisHarness, r: dict[str, Any], *, two_backends_allowed: bool = False) -> None:
    """The matrix's goal for one run: writes resumed, no acknowledged write lost, never two nodes taking writes
    at once for longer than down-after, and the -master endpoint never selected a replica (nor two nodes)."""
    print({k: v for k, v in r.items() if k != "sentinel_events"})
    assert r["acked_writes"] > 20
    assert r["recovery_s"] > 0
    assert r["acked_lost"] == 0, f"acknowledged writes missing on the final master: {r['lost_keys']}"
    assert r["dual_write_window_s"] <= h.down_after_ms / 1000
    assert r["endpoint_replica_samples"] == 0, r["endpoint_changes"]
    assert r["writes_routed_to_replica"] == 0, r["writer_timeline"]
    if not two_backends_allowed:
        assert r["endpoint_two_nodes_samples"] == 0, r["endpoint_changes"]
    assert r["endpoint_samples"] > 10 * r["recovery_s"] * 0.5, "the endpoint was not sampled every ~100 ms"


def test_killed_master_pod_is_replaced_without_losing_an_acknowledged_write(cluster: rh.RedisHarness) -> None:
    r = rh.fault_master_kill(cluster, "kill")
    check_goal(cluster, r)
    assert r["final_master"] != r["old_master"]
    assert r["old_master_accepted_after_fault_s"] == 0


def test_master_frozen_for_twice_down_after_comes_back_fenced_as_a_replica(cluster: rh.RedisHarness) -> None:
    r = rh.fault_master_freeze(cluster, "freeze")
    check_goal(cluster, r)
    assert r["final_master"] != r["old_master"]
    # Woken after SIGCONT it still claimed role:master, but its own Sentinel named the new master: HAProxy
    # never marked it UP again, and Sentinel turned it into a replica of the new master.
    assert "+convert-to-slave" in " ".join(r["sentinel_events"])


def test_partitioned_master_stops_taking_writes_before_sentinel_replaces_it(cluster: rh.RedisHarness) -> None:
    if (why := partition.unavailable()) is not None:
        pytest.skip(why)
    r = rh.fault_master_partition(cluster, "partition", hold_after_failover=3)
    check_goal(cluster, r, two_backends_allowed=True)
    lag = int(next(line.split()[1] for line in cluster.rendered_config("redis.conf").splitlines()
                   if line.startswith("min-replicas-max-lag ")))
    # Clients still reached the cut-off master and it took writes (unacknowledged: WAIT 1 found no replica) for
    # at most min-replicas-max-lag + 2 s, which the production values keep under down-after: it had stopped
    # before Sentinel could promote another node, so no two nodes ever took writes at the same time.
    assert lag + 2 <= cluster.down_after_ms / 1000
    assert 0 < r["old_master_accepted_after_fault_s"] <= cluster.down_after_ms / 1000
    assert r["dual_write_window_s"] == 0
    # Both sides passed HAProxy's checks during the partition (each master is named by the Sentinel in its own
    # pod); the frontend then refuses every connection: nothing was accepted through -master meanwhile.
    assert r["accepted_through_endpoint_while_two_up"] == 0


def test_sentinel_killed_while_leading_the_failover_delays_it_but_loses_nothing(cluster: rh.RedisHarness) -> None:
    r = rh.fault_sentinel_down_during_failover(cluster, "sentinel")
    check_goal(cluster, r)
    assert r["final_master"] != r["old_master"]
    # The election's winner died before promoting anyone; a later election (of another Sentinel, or of the
    # restarted one) completed the failover.
    events = r["sentinel_events"]
    assert sum(" +elected-leader " in e for e in events) >= 2, events
    assert any(" +failover-end " in e for e in events), events


def test_replica_restarted_mid_failover_loses_no_acknowledged_write(cluster: rh.RedisHarness) -> None:
    r = rh.fault_replica_restart_during_failover(cluster, "replica")
    check_goal(cluster, r)
    assert r["final_master"] != r["old_master"]


def test_partition_drops_only_the_named_pairs_and_always_removes_its_rules() -> None:
    if (why := partition.unavailable()) is not None:
        pytest.skip(why)
    before = set(partition.leftover_rules())  # e.g. the module cluster's SNAT rules
    with netutil.claim_block() as block:
        a, b = block.host(1), block.host(2)
        with netutil.bind_listener(b, 0) as server:
            port = server.getsockname()[1]
            probe = ("import socket, sys\ns = socket.socket(); s.settimeout(0.5)\n"
                     "try:\n    s.connect((sys.argv[1], int(sys.argv[2]))); print('open')\n"
                     "except OSError:\n    print('dropped')\n")
            gid = 1_299_000_000 + (int(block.prefix.split(".")[1]) << 8) + int(block.prefix.split(".")[2])

            def from_a() -> str:
                return subprocess.run([sys.executable, "-c", probe, b, str(port)], capture_output=True, text=True,
                                      group=gid, check=True).stdout.strip()

            with partition.pod_sources({gid: a}, f"{block.prefix}.0/24"):
                with pytest.raises(RuntimeError, match="inside"), partition.partition(drop=[(a, b)]):
                    assert from_a() == "dropped"
                    # Another source (a client on 127.0.0.1) still reaches b.
                    socket.create_connection((b, port), timeout=0.5).close()
                    added = set(partition.leftover_rules()) - before
                    assert sorted(r.split(" -m comment")[0] for r in added if r.startswith("raw:")) == [
                        f"raw: -A OUTPUT -s {a}/32 -d {b}/32", f"raw: -A PREROUTING -s {a}/32 -d {b}/32"]
                    raise RuntimeError("a failure inside the partition")
                assert from_a() == "open"
            assert set(partition.leftover_rules()) == before
    with pytest.raises(partition.PartitionError, match=r"own 127\.A\.B\.0/24 block"), \
            partition.partition(drop=[("127.0.0.1", "10.0.0.1")]):
        pass
    assert set(partition.leftover_rules()) == before


@pytest.mark.parametrize(("args", "error"), [(["--runs", "0"], "at least 1"),
                                             (["--only", "redis", "--fault", "no-such-fault"], "master-partition")])
def test_the_fault_bench_refuses_bad_arguments_in_its_last_json_line_and_starts_nothing(
        args: list[str], error: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "faults.py"), *args], capture_output=True,
                          text=True, check=False, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "faults" and error in last["error"] and last["error"] in proc.stderr
