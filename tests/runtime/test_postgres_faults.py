"""The PostgreSQL fault matrix (issue 11, point 5), one run of each fault, on real daemons.

One cluster for the module, started from the production values (the production profile's postgres block with
its example site overlay on charts/nova-postgres, bench/faults_postgres.production_values: synchronous mode,
failsafe_mode on; this host's binDir, backups off) with Patroni's timers scaled down (ttl 10,
loop_wait 2, retry_timeout 4: still loop_wait + 2 x retry_timeout <= ttl) and shorter etcd outages, so the
module fits the suite's time budget; bench/faults_postgres.py runs the same faults with the production timers.
Every fault ends with the cluster healthy again (killed nodes rejoined), so the faults share it. Each test
asserts the goal: no acknowledged (committed) write lost, never two nodes accepting writes at once, writes
acknowledged again within a bound derived from the timers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime import partition, pg_faults

pytestmark = pytest.mark.runtime

@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg_faults.Context]:
    yield from pg_faults.matrix_fixture(tmp_path_factory)


def test_production_values_are_synchronous_with_failsafe(ctx: pg_faults.Context) -> None:
    assert ctx.settings["synchronous_mode"] is True
    assert ctx.settings["failsafe_mode"] is True
    assert ctx.loop_wait + 2 * ctx.retry_timeout <= ctx.ttl
    live = pg_faults.live_config(ctx.cluster, ctx.cluster.wait_healthy())
    assert live.get("failsafe_mode") is True and live.get("synchronous_mode") is True, live


def test_partition_rules_are_removed_even_when_the_body_fails(ctx: pg_faults.Context) -> None:
    c, cg = ctx.cluster, ctx.cgroups
    assert cg is not None
    with pytest.raises(RuntimeError, match="boom"), \
            partition.partition(cgroup_drop=[(cg.path(c.pg_pods[0].name), c.pg_pods[1].ip)]) as tag:
        assert len(partition.leftover_rules(tag=tag)) == 1
        raise RuntimeError("boom")
    assert partition.leftover_rules() == []
    with pytest.raises(partition.PartitionError, match="own 127.A.B.0/24 block"), \
            partition.partition(cgroup_drop=[(cg.path(c.pg_pods[0].name), "127.0.0.1")]):
        pass
    # A run killed before its finally: the next partition sweeps its rules (no such pid).
    dead = f"{partition.TAG_PREFIX}p999999999-abcdef-1"
    partition._iptables("-t", "raw", "-I", "OUTPUT", "-s", c.pg_pods[2].ip, "-d", c.pg_pods[1].ip,
                        "-m", "comment", "--comment", dead, "-j", "DROP")
    with partition.partition():
        assert partition.leftover_rules(tag=dead) == []


def test_leader_pod_killed(ctx: pg_faults.Context) -> None:
    result = pg_faults.leader_pod_killed(ctx, 1)
    pg_faults.assert_goal(result, pg_faults.leader_loss_bound(ctx))
    assert result["promoted_was_sync"], result
    assert result["old_leader_writable_seen"] is False, result


def test_patroni_alone_killed(ctx: pg_faults.Context) -> None:
    result = pg_faults.patroni_killed(ctx, 1)
    pg_faults.assert_goal(result, pg_faults.leader_loss_bound(ctx))
    # The orphaned postmaster ran on as a primary, reachable, yet no COMMIT on it returned after the promotion.
    assert result["orphan_postmaster_running"] and result["orphan_in_recovery"] is False, result
    assert result["promoted_was_sync"], result


def test_leader_partitioned_from_etcd_and_replicas(ctx: pg_faults.Context) -> None:
    result = pg_faults.leader_partitioned(ctx, 1)
    pg_faults.assert_goal(result, pg_faults.leader_loss_bound(ctx))
    assert result["rules_left"] == 0
    # It demoted itself: failsafe needs every member's REST answer, and the replicas are cut off.
    assert {"demoting self", "demoted self"} & set(result["old_leader_log"]), result
    assert "continue to run as a leader" not in result["old_leader_log"], result


def test_one_etcd_member_lost(ctx: pg_faults.Context) -> None:
    result = pg_faults.etcd_member_lost(ctx, 1)
    pg_faults.assert_goal(result, ctx.retry_timeout + ctx.loop_wait)
    assert result["leader_kept"], result


def test_etcd_quorum_lost_writes_go_on_with_failsafe(ctx: pg_faults.Context) -> None:
    result = pg_faults.etcd_quorum_lost(ctx, 1)
    pg_faults.assert_goal(result, ctx.retry_timeout + ctx.loop_wait)
    assert result["leader_still_primary"] and result["max_primaries_seen"] == 1, result
    assert "continue to run as a leader because failsafe mode" in result["leader_log"], result
    assert result["writes_during_outage"] > 50, result


def test_synchronous_standby_killed_under_load(ctx: pg_faults.Context) -> None:
    result = pg_faults.sync_standby_killed(ctx, 1)
    # COMMITs wait until the leader's next HA loop names the other replica synchronous.
    pg_faults.assert_goal(result, 2 * ctx.loop_wait + ctx.retry_timeout)
    assert result["leader_kept"] and result["new_sync"] != result["killed"], result


def test_replica_lagging_past_maximum_lag_is_not_promoted(ctx: pg_faults.Context) -> None:
    result = pg_faults.lagging_replica(ctx, 1)
    pg_faults.assert_goal(result, pg_faults.leader_loss_bound(ctx))
    assert result["lag_bytes_before_kill"] > ctx.settings["maximum_lag_on_failover"], result
    assert result["lagging_promoted"] is False and result["promoted"] != result["lagging"], result

