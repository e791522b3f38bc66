"""A start that fails half-way leaves nothing behind: no daemon (by session), no temp dir, no claimed block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_binaries
from tests.runtime import postgres_harness as pg
from tests.runtime import redis_harness as rh

pytestmark = pytest.mark.runtime


def sessions_alive(sids: list[int]) -> list[str]:
    """Processes still running in any of these sessions (what a daemon's start script forked or exec'd)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sids and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def test_redis_pods_that_fail_after_starting_are_killed_with_their_temp_dir_and_block_released() -> None:
    require_binaries(*rh.BINARIES)
    seen: dict[str, Any] = {}

    def start_then_fail(h: rh.RedisHarness) -> None:
        seen["h"] = h
        h.start_all()
        h.wait_stable()
        raise AssertionError("a test fails while every daemon runs")

    with pytest.raises(AssertionError, match="a test fails"):
        rh.started(lambda: rh.RedisHarness(), start_then_fail)
    h: rh.RedisHarness = seen["h"]
    assert len(h.procs) == 7
    assert sessions_alive([p.pid for p in h.procs.values()]) == []
    assert not h.workdir.exists() and not h.block.lock_path.exists()


def test_etcd_and_patroni_that_fail_while_starting_are_killed_with_their_temp_dir_and_block_released() -> None:
    require_binaries(*pg.BINARIES)
    seen: dict[str, Any] = {}

    def start_then_fail(c: pg.Cluster) -> None:
        seen["c"] = c
        c.start_etcd()
        c.start_patroni(0)
        raise AssertionError("a test fails while etcd and a Patroni node start")

    with pytest.raises(AssertionError, match="a test fails"):
        pg.started(lambda: pg.Cluster(pg.render(set_values=["etcd.replicas=1", "replicas=1", "patroni.synchronousMode=false"])), start_then_fail)
    c: pg.Cluster = seen["c"]
    assert len(c.procs) == 2
    assert sessions_alive([p.popen.pid for p in c.procs.values()]) == []
    assert not c.tmp.exists() and not c.block.lock_path.exists()
