"""A harness failure says what the processes logged: the logs' directory is gone once the cluster stops, so a CI
failure must carry the evidence in its message (tests.runtime.log_block, used by postgres_harness.Cluster.wait and
log_tails and by redis_harness.RedisHarness.logs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.runtime.postgres_harness import Cluster, Proc
from tests.runtime.redis_harness import RedisHarness


def _proc(tmp_path: Path, name: str, lines: list[str], *, exit_code: int | None) -> Proc:
    log = tmp_path / f"{name}.log"
    log.write_text("".join(f"{line}\n" for line in lines))
    code = "import time; time.sleep(60)" if exit_code is None else f"raise SystemExit({exit_code})"
    popen = subprocess.Popen([sys.executable, "-c", code])
    if exit_code is not None:
        popen.wait()
    return Proc(name, popen, log)


def _fake_cluster(tmp_path: Path) -> SimpleNamespace:
    procs = {
        "nova-postgres-0": _proc(tmp_path, "nova-postgres-0", [f"line {i}" for i in range(40)], exit_code=None),
        "nova-postgres-etcd-0": _proc(tmp_path, "nova-postgres-etcd-0", ["etcd up", "etcd gone"], exit_code=3),
    }
    fake = SimpleNamespace(procs=procs, tmp=tmp_path, bind_failure=lambda: None)
    fake.log_tails = lambda lines=15: Cluster.log_tails(fake, lines)  # type: ignore[arg-type]
    return fake


def _stop(fake: SimpleNamespace) -> None:
    for proc in fake.procs.values():
        proc.popen.kill()
        proc.popen.wait()


def test_log_tails_give_each_process_its_state_and_last_lines(tmp_path: Path) -> None:
    fake = _fake_cluster(tmp_path)
    try:
        text = Cluster.log_tails(fake, 15)  # type: ignore[arg-type]
    finally:
        _stop(fake)
    pg, etcd = text.split("--- ")[1:]
    assert pg.startswith("nova-postgres-0 (running), nova-postgres-0.log, last 15 lines:")
    assert pg.splitlines()[1:] == [f"line {i}" for i in range(25, 40)]
    assert etcd.startswith("nova-postgres-etcd-0 (exited 3), nova-postgres-etcd-0.log, last 2 lines:")
    assert etcd.splitlines()[1:] == ["etcd up", "etcd gone"]


def test_a_wait_that_times_out_names_what_it_waited_for_and_carries_the_logs(tmp_path: Path) -> None:
    fake = _fake_cluster(tmp_path)
    try:
        with pytest.raises(TimeoutError) as err:
            Cluster.wait(fake, "Patroni to give up the bootstrap", lambda: False, 0.2, 0.05)  # type: ignore[arg-type]
    finally:
        _stop(fake)
    message = str(err.value)
    assert message.startswith(f"timed out after 0 s waiting for Patroni to give up the bootstrap; logs in {tmp_path}\n")
    assert "line 39" in message and "etcd gone" in message and "(exited 3)" in message


def test_a_log_that_cannot_be_read_is_named_not_raised(tmp_path: Path) -> None:
    fake = _fake_cluster(tmp_path)
    (tmp_path / "nova-postgres-0.log").unlink()
    try:
        text = Cluster.log_tails(fake)  # type: ignore[arg-type]
    finally:
        _stop(fake)
    assert "nova-postgres-0 (running), nova-postgres-0.log, last 1 lines:\n(unreadable:" in text


def test_the_redis_harness_names_each_process_with_its_pid_state_and_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "redis-0.log"
    log.write_text("".join(f"r{i}\n" for i in range(20)))
    procs = {"redis-0": SimpleNamespace(name="redis-0", pid=41, alive=lambda: False, log=log),
             "sentinel-0": SimpleNamespace(name="sentinel-0", pid=42, alive=lambda: True, log=tmp_path / "none.log")}
    text = RedisHarness.logs(SimpleNamespace(procs=procs), 5)  # type: ignore[arg-type]
    redis_part, sentinel_part = text.split("--- ")[1:]
    assert redis_part.splitlines() == ["redis-0 (pid 41, exited), redis-0.log, last 5 lines:",
                                       "r15", "r16", "r17", "r18", "r19"]
    assert sentinel_part.startswith("sentinel-0 (pid 42, running), none.log, last 1 lines:\n(unreadable:")
