"""Failover of the rendered production profile on real daemons: 3 etcd members, 3 Patroni + PostgreSQL 15.

One cluster for the module. Order matters and is expressed with module fixtures: the healthy-cluster test runs
first, `failover` kills the leader once (tests 2 and 3 read its result), `rejoin` restarts the killed node
(test 4), then the preStop switchover runs on the new leader.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_binaries
from tests.runtime import postgres_harness as h

pytestmark = pytest.mark.runtime

PRODUCTION = h.CHART / "ci" / "production-values.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[h.Cluster]:
    require_binaries(*h.BINARIES)
    with h.running_cluster(h.render([PRODUCTION])) as c:
        yield c


@pytest.fixture(scope="module")
def failover(cluster: h.Cluster) -> h.FailoverResult:
    cluster.wait_healthy()
    return h.kill_leader_under_writes(cluster)


@pytest.fixture(scope="module")
def rejoin(cluster: h.Cluster, failover: h.FailoverResult) -> dict[str, Any]:
    return h.wait_rejoined(cluster, failover.old_leader)


def _dcs(cluster: h.Cluster) -> dict[str, Any]:
    cfg = yaml.safe_load(cluster.chart.configmap("-patroni")["patroni.yml"])
    return cfg["bootstrap"]["dcs"]


def test_one_leader_two_streaming_replicas_and_primary_service_selects_the_leader(cluster: h.Cluster) -> None:
    leader = cluster.wait_healthy()
    others = [i for i in range(3) if i != leader]
    rows = h.query(cluster.superuser_dsn(cluster.pg_pods[leader].ip),
                   "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1")
    assert sorted(r[0] for r in rows) == sorted(cluster.pg_pods[i].name for i in others)
    assert all(r[1] == "streaming" for r in rows)
    assert [r[2] for r in rows].count("sync") == 1, f"synchronous mode should keep one sync standby: {rows}"
    for i in others:
        assert h.query(cluster.superuser_dsn(cluster.pg_pods[i].ip), "SELECT pg_is_in_recovery()")[0][0] is True
    cluster.wait("role labels on every pod", lambda: all(cluster.api.label_of(cluster.ns, p.name, cluster.role_label)
                                                          for p in cluster.pg_pods), 10)
    assert cluster.endpoints("-primary") == [leader]
    assert cluster.endpoints("-replicas") == others
    assert cluster.api.denied == [], "the callback asked for something the rendered Role does not allow"
    postgres_uid = h.pwd.getpwnam(h.OS_USER).pw_uid
    assert {cluster.process_uid(p.name) for p in cluster.pg_pods} == {postgres_uid}, "Patroni must not run as root"
    for i in range(3):
        postmaster = cluster.postmaster_pid(i)
        assert postmaster and h.Path(f"/proc/{postmaster}").stat().st_uid == postgres_uid


def test_sigkill_of_the_leader_elects_a_new_leader_in_time_and_routing_follows(
        cluster: h.Cluster, failover: h.FailoverResult) -> None:
    dcs = _dcs(cluster)
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert failover.new_leader != failover.old_leader
    assert cluster.endpoints("-primary") == [failover.new_leader]
    # Leader key expiry (ttl) plus one HA loop is Patroni's bound; the target is 30 s.
    assert failover.failover_s < min(30, dcs["ttl"] + dcs["loop_wait"] + 5), failover


def test_every_commit_acknowledged_before_the_kill_survives(failover: h.FailoverResult) -> None:
    assert len(failover.acked) > 50, f"too few writes to prove anything: {len(failover.acked)}"
    assert failover.lost == [], f"{len(failover.lost)} acknowledged commits lost"


def test_old_leader_rejoins_as_a_streaming_replica_and_is_never_writable(
        cluster: h.Cluster, failover: h.FailoverResult, rejoin: dict[str, Any]) -> None:
    old = failover.old_leader
    assert rejoin["writable_seen"] is False and rejoin["primary_status_seen"] is False, rejoin
    assert rejoin["rewind"] in ("ran", "not needed") and not rejoin["recloned"], rejoin
    assert cluster.endpoints("-primary") == [failover.new_leader]
    cluster.wait("the old leader in the -replicas Service", lambda: old in cluster.endpoints("-replicas"), 15)
    # After catching up it holds exactly the new leader's rows: nothing it wrote unacknowledged survived.
    leader_dsn = cluster.superuser_dsn(cluster.pg_pods[failover.new_leader].ip)
    old_dsn = cluster.superuser_dsn(cluster.pg_pods[old].ip)
    lsn = h.query(leader_dsn, "SELECT pg_current_wal_lsn()::text")[0][0]
    cluster.wait("the old leader to replay the leader's WAL", lambda: h.query(
        old_dsn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0], 30)
    count = "SELECT count(*), coalesce(max(id), 0) FROM acked_writes"
    assert h.query(old_dsn, count) == h.query(leader_dsn, count)


def test_prestop_hook_hands_leadership_to_a_replica_before_the_pod_stops(
        cluster: h.Cluster, rejoin: dict[str, Any]) -> None:
    leader = cluster.wait_healthy()
    container = cluster.pg_container()
    hook = container["lifecycle"]["preStop"]["exec"]["command"]
    pod = cluster.pg_pods[leader]
    translate = h.Translator(pod.mounts, cluster.hosts, pod.ip)
    env = cluster.pod_env(pod)
    proc = subprocess.run([translate(a) for a in hook], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "handed over" in proc.stdout, proc.stdout
    new = cluster.wait("a new routed leader", lambda: (cluster.leader() not in (None, leader)
                                                       and cluster.endpoints("-primary") == [cluster.leader()]), 30)
    assert new
    assert cluster.rest(leader, "/primary") != 200
    # The old leader's callbacks relabel it: it joins the -replicas Service once it streams again.
    cluster.wait("the old leader labelled replica and routed as one",
                 lambda: cluster.api.label_of(cluster.ns, pod.name, cluster.role_label) == "replica"
                 and leader in cluster.endpoints("-replicas"), 30)
    assert cluster.api.denied == []


def _settled(cluster: h.Cluster) -> int:
    """Wait for one leader, streaming replicas, and both Services routing exactly to them."""
    def ok() -> int | None:
        lead = cluster.leader()
        if lead is None:
            return None
        routes = cluster.routing()
        others = [i for i in range(len(cluster.pg_pods)) if i != lead]
        return lead + 1 if routes == {"-primary": [lead], "-replicas": others} else None
    cluster.wait_healthy()
    return cluster.wait("both Services routing to the leader and the replicas", ok, 60) - 1


# How long after the kill the killed pod's container starts again: at once (kubelet's first restart of a crashed
# container), after the new leader is routed (a restart back-off), and in between.
RESTARTS: tuple[float | None, ...] = (0.0, None, 3.0)


def test_routing_never_points_at_a_wrong_node_while_the_leader_pod_is_killed_again_and_again(
        cluster: h.Cluster) -> None:
    kills = []
    with h.RoutingSampler(cluster, interval=0.1) as sampler:
        for restart in RESTARTS:
            old = _settled(cluster)
            # The label the old leader's pod keeps through the kill: the stale label the chart must neutralise.
            assert cluster.api.label_of(cluster.ns, cluster.pg_pods[old].name, cluster.role_label) == "primary"
            cluster.kill_node(old)
            killed = h.time.monotonic()
            if restart is not None:
                h.time.sleep(restart)
                cluster.start_patroni(old)

            def routed() -> bool:
                lead = cluster.leader()
                return lead is not None and cluster.endpoints("-primary") == [lead]
            cluster.wait("a leader routed by -primary", routed, 60, interval=0.1)
            if restart is None:
                cluster.start_patroni(old)
            new = _settled(cluster)
            kills.append((old, new, restart, killed))
    assert sampler.errors == []
    assert len(sampler.samples) > 100, f"too few samples to prove anything: {len(sampler.samples)}"
    violations = sampler.violations()
    assert violations == [], f"{len(violations)} wrong routes in {len(sampler.samples)} samples: {violations[:10]}"
    # The sampler ran through every failover: it saw -primary empty after each kill (the dead leader dropped out).
    for old, _new, restart, killed in kills:
        window = [s for s in sampler.samples if killed < s.t < killed + 5]
        assert any(not s.primary for s in window), (
            f"kill of pod {old} (restart {restart}): no sample with -primary empty in the 5 s after it; "
            f"{len(window)} samples, median period {sampler.period():.2f} s, first {window[:3]}")
    assert cluster.api.denied == []
