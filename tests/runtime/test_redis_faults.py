"""The Redis fault matrix (issue 11, point 5) on one run each, with the production values.

One cluster for the whole file: charts/nova-redis rendered with the production profile's redis block
(redis_harness.production_values: values/production.yaml with its example site overlay), three pods
(redis + Sentinel) and HAProxy (the -master endpoint) started from the rendered files (redis_harness.py). As
root, each pod's processes connect from the pod's own address (partition.pod_sources) so that the partition
fault can cut pods apart by address pair. Each fault runs while a client writes through -master (acknowledged =
SET OK + WAIT 1), a probe writes straight to every node, and the -master endpoint set is sampled every 100 ms;
afterwards the cluster is restored (killed processes started again, partition healed) and settled, and the next
fault starts from there. bench/faults.py gives the figures over several fresh clusters.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


def check_goal(h: rh.RedisHarness, r: dict[str, Any]) -> None:
    """The matrix's goal for one run: writes resumed, no acknowledged write lost, never two nodes taking writes
    at once for longer than down-after, and the -master endpoint never selected a replica (nor two nodes)."""
    print({k: v for k, v in r.items() if k != "sentinel_events"})
    assert r["acked_writes"] > 20
    assert r["recovery_s"] > 0
    assert r["acked_lost"] == 0, f"acknowledged writes missing on the final master: {r['lost_keys']}"
    assert r["dual_write_window_s"] <= h.down_after_ms / 1000
    assert r["endpoint_replica_samples"] == 0, r["endpoint_changes"]
    assert r["writes_routed_to_replica"] == 0, r["writer_timeline"]
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
    # Woken after SIGCONT it still claimed role:master, but the Sentinels named the new master: HAProxy never
    # selected it again, and Sentinel turned it into a replica of the new master.
    assert "+convert-to-slave" in " ".join(r["sentinel_events"])


def test_partitioned_master_stops_taking_writes_before_sentinel_replaces_it(cluster: rh.RedisHarness) -> None:
    if (why := partition.unavailable()) is not None:
        pytest.skip(why)
    r = rh.fault_master_partition(cluster, "partition")
    check_goal(cluster, r)
    lag = int(next(line.split()[1] for line in cluster.rendered_config("redis.conf").splitlines()
                   if line.startswith("min-replicas-max-lag ")))
    # Clients still reached the cut-off master and it took writes (unacknowledged: WAIT 1 found no replica) for
    # at most min-replicas-max-lag + 2 s, which the production values keep under down-after: it had stopped
    # before Sentinel could promote another node, so no two nodes ever took writes at the same time.
    assert lag + 2 <= cluster.down_after_ms / 1000
    assert 0 < r["old_master_accepted_after_fault_s"] <= cluster.down_after_ms / 1000
    assert r["dual_write_window_s"] == 0
    # HAProxy follows the majority of the Sentinels: the cut-off master (named only by the Sentinel in its own
    # pod) was dropped and the new one selected while the partition still lasted (healed down-after after the
    # majority named it), never both at once (check_goal).
    assert r["recovered_during_partition"], (r["recovery_s"], r["partition_s"], r["endpoint_changes"])
    assert r["final_master"] != r["old_master"]


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


@dataclass
class _Views:
    """What the stand-in daemons answer: each node's role, the node each Sentinel names (None: no master known),
    and which Sentinels are down (they close every connection at once)."""

    roles: list[str]
    named: list[int | None]
    down: set[int] = field(default_factory=set)


def _stand_ins(h: rh.RedisHarness, views: _Views) -> list[socketserver.ThreadingTCPServer]:
    """Line-protocol stand-ins for each pod's redis (INFO -> its role; anything else -> +node<i>) and Sentinel
    (get-master-addr-by-name -> the named node's address; PING -> +PONG), on the pods' addresses and ports."""

    def handler(i: int, sentinel: bool) -> type[socketserver.StreamRequestHandler]:
        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                if sentinel and i in views.down:
                    return
                with contextlib.suppress(OSError):  # HAProxy resets a check connection once it has decided
                    self.serve()

            def serve(self) -> None:
                # Like Redis: the replies to every command of one read go out in one write.
                pending = b""
                while data := self.request.recv(4096):
                    *lines, pending = (pending + data).split(b"\n")
                    self.request.sendall(b"".join(self.reply(line.decode().split()) for line in lines))

            def reply(self, words: list[str]) -> bytes:
                cmd = words[0].upper() if words else ""
                if sentinel and cmd == "SENTINEL":
                    n = views.named[i]
                    if n is None:
                        return b"*-1\r\n"
                    host, port = h.addresses[n], str(h.redis_port)
                    return f"*2\r\n${len(host)}\r\n{host}\r\n${len(port)}\r\n{port}\r\n".encode()
                if cmd == "PING":
                    return b"+PONG\r\n"
                if not sentinel and cmd == "INFO":
                    body = f"# Replication\r\nrole:{views.roles[i]}\r\n"
                    return f"${len(body)}\r\n{body}\r\n".encode()
                return f"+node{i}\r\n".encode() if cmd else b""
        return Handler

    servers = []
    try:
        for i, address in enumerate(h.addresses):
            for port, sentinel in ((h.redis_port, False), (h.sentinel_port, True)):
                server = socketserver.ThreadingTCPServer((address, port), handler(i, sentinel))
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
                servers.append(server)
    except BaseException:
        for server in servers:
            server.shutdown()
            server.server_close()
        raise
    return servers


def _routed_to(h: rh.RedisHarness) -> str:
    """The node a new connection through -master reaches (``node<i>``), or "rejected"."""
    with socket.create_connection((h.proxy_address, h.redis_port), timeout=2) as conn:
        conn.sendall(b"WHO\r\n")
        reply = conn.recv(64).decode()
    return reply.strip().lstrip("+") if reply else "rejected"


def slowest_check(h: rh.RedisHarness, backend: str, server: str, samples: int = 5) -> int:
    """The longest check duration (ms) of one server over ``samples`` stats reads 100 ms apart (its status must
    be DOWN in every one)."""
    durations = []
    for _ in range(samples):
        row = next(r for r in h.proxy_servers() if (r["pxname"], r["svname"]) == (backend, server))
        assert row["status"].startswith("DOWN"), (backend, server, row["status"])
        durations.append(int(row["check_duration"] or 0))
        time.sleep(0.1)
    return max(durations)


def test_proxy_selects_only_the_master_named_by_a_majority_of_the_sentinels_and_wrong_answers_fail_at_once() -> None:
    """The rendered haproxy.cfg on real HAProxy, the pods played by stand-ins whose answers the test sets: the
    -master frontend selects a node only while it says role:master AND a majority of the Sentinels names it."""
    require_binaries("haproxy")
    views = _Views(roles=["master", "slave", "slave"], named=[0, 0, 0])
    with rh.RedisHarness(set_values=["auth.enabled=false", "masterProxy.checkInterval=100ms"]) as h:
        servers = _stand_ins(h, views)
        try:
            h.start_proxy()

            def expect(selected: list[int], routed: str, what: str) -> None:
                rh.wait_until(lambda: h.proxy_selected() == selected, 10, f"{what}: HAProxy to select {selected}")
                for _ in range(5):  # and it stays so (checks every 100 ms, rise/fall 2)
                    assert h.proxy_selected() == selected, what
                    assert _routed_to(h) == routed, what
                    time.sleep(0.1)

            expect([0], "node0", "all Sentinels name the master")
            # The partition: node 0 still says role:master and its own Sentinel still names it, the two others
            # promoted node 2. The old rule (own pod's Sentinel) passed both and failed closed; now only node 2.
            views.roles[2], views.named[1], views.named[2] = "master", 2, 2
            expect([2], "node2", "minority master")
            # Down to 2 of 3 Sentinels (one down): both must name the node.
            views.down.add(0)
            expect([2], "node2", "one Sentinel down")
            views.named[1] = None
            expect([], "rejected", "one Sentinel down, another knows no master")
            # A Sentinel that knows no master ("*-1") fails its vote check at once too.
            assert slowest_check(h, "node2_votes", "sentinel1") < 500
            views.named[1] = 0
            expect([], "rejected", "one vote each")
            # A replica is never selected, whoever names it.
            views.down.clear()
            views.roles, views.named = ["slave", "slave", "slave"], [1, 1, 1]
            expect([], "rejected", "no node says role:master")
            views.roles[1] = "master"
            expect([1], "node1", "back to one master named by all")
            # A Sentinel naming another node fails its check at once, not after `timeout check` (2 s); so does
            # the node check of a node without a majority.
            for i in (0, 2):
                for j in range(3):
                    assert slowest_check(h, f"node{i}_votes", f"sentinel{j}") < 500, (i, j)
                assert slowest_check(h, f"node{i}", f"node{i}") < 500, i
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()


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
