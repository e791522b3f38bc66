"""The host-wide daemon slots (slots.py): a process waits only while every slot is held by other processes, gets
one as soon as a holder lets go or dies, reuses its own, and a wait that runs out names the holders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.runtime import netutil, slots

# A holder in another process: takes the named slot files (as slots.py does, and writes its line), says so, and
# keeps them until its stdin closes.
HOLDER = """
import fcntl, os, sys
fds = []
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, f"pid {os.getpid()} (holder)\\n".encode(), 0)
    fds.append(fd)
print("held", flush=True)
sys.stdin.read()
"""


def hold(directory: Path, *indexes: int) -> subprocess.Popen[str]:
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, *(str(directory / f"slot-{i}.lock") for i in indexes)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def let_go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)


def test_a_process_reuses_its_slot_and_gives_it_back_with_its_last_use(tmp_path: Path) -> None:
    s = slots.DaemonSlots(tmp_path, 2)
    s.acquire()
    first = s.held
    assert first is not None
    s.acquire()
    assert s.held == first and s.holders() == [slots.holder_line()]
    assert f"pid {os.getpid()} in {os.getcwd()}: " in slots.holder_line()
    assert "test_a_process_reuses_its_slot" in slots.holder_line()  # the test it runs for
    s.release()
    assert s.held == first, "released with a use left"
    s.release()
    assert s.held is None and s.holders() == []
    # The file stays for the next holder, who may be another user's run, whatever this process's umask.
    assert first.stat().st_mode & 0o777 == 0o666
    s.release()  # one release too many changes nothing
    assert s.held is None


def test_when_every_slot_is_held_elsewhere_the_wait_runs_out_naming_the_holders(tmp_path: Path) -> None:
    holder = hold(tmp_path, 0, 1)
    try:
        s = slots.DaemonSlots(tmp_path, 2)
        with pytest.raises(slots.SlotTimeout) as err:
            s.acquire(timeout=0.3)
        message = str(err.value)
        assert f"pid {holder.pid} (holder)" in message and "all 2 in" in message
        assert slots.CAPACITY_ENV in message
        assert s.held is None
    finally:
        let_go(holder)


def test_a_waiter_gets_the_slot_when_its_holder_lets_go(tmp_path: Path) -> None:
    holder = hold(tmp_path, 0)
    s = slots.DaemonSlots(tmp_path, 1)
    got: list[float] = []
    waiter = threading.Thread(target=lambda: (s.acquire(timeout=20), got.append(time.monotonic())))
    waiter.start()
    time.sleep(1.0)
    assert not got, "acquired a slot another process holds"
    let_go(holder)
    released = time.monotonic()
    waiter.join(20)
    assert got and s.held == tmp_path / "slot-0.lock"
    assert got[0] - released < 5
    s.release()


def test_a_slot_of_a_killed_holder_is_free_at_once(tmp_path: Path) -> None:
    holder = hold(tmp_path, 0)
    holder.kill()
    holder.wait(10)
    s = slots.DaemonSlots(tmp_path, 1)
    s.acquire(timeout=2)
    assert s.held == tmp_path / "slot-0.lock"
    s.release()


def test_capacity_is_four_per_core_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(slots.CAPACITY_ENV, raising=False)
    assert slots.capacity() == 4 * (os.cpu_count() or 1)
    monkeypatch.setenv(slots.CAPACITY_ENV, "3")
    assert slots.capacity() == 3
    for bad in ("0", "-1", "many"):
        monkeypatch.setenv(slots.CAPACITY_ENV, bad)
        with pytest.raises(ValueError, match=rf"{slots.CAPACITY_ENV}='{bad}': expected a positive int"):
            slots.capacity()


def test_a_claimed_address_block_holds_a_slot_until_it_is_released(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    s = slots.DaemonSlots(tmp_path, 1)
    monkeypatch.setattr(slots, "SLOTS", s)
    block = netutil.claim_block()
    inner = netutil.claim_block()  # the same process: the same slot
    assert s.held == tmp_path / "slot-0.lock"
    block.release()
    block.release()
    assert s.held is not None, "the inner block still uses the slot"
    inner.release()
    assert s.held is None
