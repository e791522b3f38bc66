"""The PostgreSQL zone faults of docs/disaster-recovery.md ("Lose a zone"), one run each, on real daemons.

The same cluster as test_postgres_faults.py (the production values, Patroni's timers scaled down by
pg_faults.TEST_TIMERS), but a cluster of its own, so that these two long faults run on another worker than the
fault matrix. bench/faults.py measures them with the production timers (the runbook's [F2] figures):

- zone_lost: the leader's pod and the etcd raft leader SIGKILLed at once (a zone of the production spread,
  one PostgreSQL pod and one etcd member per zone). etcd keeps its quorum, the synchronous standby is promoted.
- leader_and_sync_lost: the leader and its synchronous standby SIGKILLed at once (a zone that held two pods).
  Synchronous mode must not promote the remaining asynchronous replica, which may lack acknowledged commits;
  writes come back once the two pods restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime import pg_faults

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg_faults.Context]:
    yield from pg_faults.matrix_fixture(tmp_path_factory)


def test_zone_lost_promotes_the_synchronous_standby_and_the_old_leader_rejoins(ctx: pg_faults.Context) -> None:
    result = pg_faults.zone_lost(ctx, 1)
    # A leader loss, and the etcd election that runs at the same time (Patroni retries etcd for retry_timeout).
    pg_faults.assert_goal(result, pg_faults.leader_loss_bound(ctx) + ctx.retry_timeout)
    assert result["promoted_was_sync"], result
    assert result["old_leader_writable_seen"] is False, result
    assert result["endpoint_violations"] == 0, result


def test_leader_and_sync_standby_lost_never_promotes_the_async_replica(ctx: pg_faults.Context) -> None:
    result = pg_faults.leader_and_sync_lost(ctx, 1)
    pg_faults.assert_goal(result, result["down_s"] + pg_faults.leader_loss_bound(ctx))
    assert result["async_replica_promoted"] is False, result
    # Nothing was committed while both were down: the Service took no write from the kill (a COMMIT already on
    # its way may still return) until after the hold, and the replica that stayed took none before the restart,
    # through the Service or directly.
    assert result["writes_stopped_after_s"] < 1.0 and result["recovery_s"] >= result["down_s"], result
    remaining = result["acked_by_node"].get(result["remaining"])
    assert remaining is None or remaining["first_s"] > result["down_s"], result
    assert result["restart_to_writes_s"] < pg_faults.leader_loss_bound(ctx), result
    assert result["endpoint_violations"] == 0, result
