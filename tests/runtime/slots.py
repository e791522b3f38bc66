"""A cap, for the whole host, on how many test processes run daemons at once, so concurrent runs do not starve
each other's clusters.

The runtime tests' bounds (a failover within its goal, a sampler every ~100 ms, a rejoin within 90 s) hold when
the clusters running at once get the CPU that one `make test` gives them: up to one cluster per worker. A second
run on the same host doubled that. Measured on 2 cores with two fresh clones started together before this cap:
each took 1,346 s instead of about 280 s, with 20 failed tests and 14-18 errors each, all of them clusters that
ran out of time. CI once ran 2.4 times slower than usual and failed the same way.

So a process that starts daemons first holds one of :func:`capacity` *slots*: an exclusive ``flock`` on
``$TMPDIR/nova-daemon-slots/slot-<i>.lock``, shared by every run that uses the same temp dir, the way the
loopback blocks are (netutil.py). The capacity is ``NOVA_TEST_DAEMON_SLOTS``, else four per core, the number of
workers `make test` starts: one run alone never waits, and two runs together never run more clusters than one
run does. netutil.claim_block takes the slot, because every harness claims an address block before it starts
anything; the block's release gives it back.

- A slot is per process and counted: the second block a process claims (a test's own extra block, a Redis next
  to a PostgreSQL cluster) reuses the slot it holds. A process waits only while it holds none, so no two
  waiters can hold what the other needs.
- The kernel drops the lock when the process dies: no stale slots. The descriptor is not inherited (Python opens
  files close-on-exec), so a daemon that outlives its test does not keep a slot.
- A waiter tries every slot twice a second. After ``NOVA_TEST_DAEMON_SLOT_WAIT`` seconds (default 1,800) it
  fails with one line naming each holder (pid, directory and test, which each holder writes into its slot
  file).
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import threading
import time
from pathlib import Path

CAPACITY_ENV = "NOVA_TEST_DAEMON_SLOTS"
WAIT_ENV = "NOVA_TEST_DAEMON_SLOT_WAIT"
SLOTS_PER_CORE = 4  # the Makefile's WORKERS: 4 x cores
DEFAULT_WAIT_S = 1800.0
POLL_S = 0.5
HOLDER_CHARS = 120


class SlotTimeout(RuntimeError):
    """No slot came free in time; the message names the holders."""


def _env_number(name: str, default: float, kind: type = float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a positive {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive {kind.__name__}")
    return value


def capacity() -> int:
    """How many processes of all runs on this host may run daemons at once."""
    return int(_env_number(CAPACITY_ENV, SLOTS_PER_CORE * (os.cpu_count() or 1), int))


def try_flock(path: Path, mode: int = 0o644) -> int | None:
    """A descriptor of ``path`` (created with ``mode``) holding an exclusive flock, or None when another process
    holds one (the descriptor is closed again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def shared_dir(path: Path) -> None:
    """Make ``path`` if it is missing, writable by every user's runs, like /tmp (mode 1777)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        try:
            path.chmod(0o1777)
        except OSError:
            pass


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def holder_line() -> str:
    """What a holder writes into its slot: its pid, directory and test (pytest's PYTEST_CURRENT_TEST), else its
    command line (an xdist worker's says nothing: ``python -c import sys;exec(...)``)."""
    doing = os.environ.get("PYTEST_CURRENT_TEST") or _cmdline(os.getpid())
    return f"pid {os.getpid()} in {os.getcwd()}: {doing[:HOLDER_CHARS]}"


class DaemonSlots:
    """The slots in ``directory``, ``size`` of them (:func:`capacity` when None, read at each acquire)."""

    def __init__(self, directory: Path, size: int | None = None) -> None:
        self.directory = directory
        self.size = size
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._depth = 0

    @property
    def held(self) -> Path | None:
        """The slot file this process holds, or None."""
        return self._path

    def _try(self, path: Path) -> int | None:
        fd = try_flock(path, 0o666)
        if fd is None:
            return None
        try:  # the file stays for the next holder, who may be another user: not the creator's umask
            os.fchmod(fd, 0o666)
        except OSError:
            pass
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_line()}\n".encode(), 0)
        return fd

    def holders(self) -> list[str]:
        """What each slot file says of its holder (the lines of slots that are held now)."""
        out = []
        for i in range(self.size or capacity()):
            path = self.directory / f"slot-{i}.lock"
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the line is its holder's
                out.append(os.pread(fd, 512, 0).decode(errors="replace").strip() or "?")
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return out

    def acquire(self, timeout: float | None = None) -> None:
        """Hold a slot (or count one more use of the slot already held), waiting for one to come free."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                return
            size = self.size or capacity()
            wait = timeout if timeout is not None else _env_number(WAIT_ENV, DEFAULT_WAIT_S)
            shared_dir(self.directory)
            deadline = time.monotonic() + wait
            order = list(range(size))
            while True:
                random.shuffle(order)  # waiters of several runs do not all try slot 0 first
                for i in order:
                    path = self.directory / f"slot-{i}.lock"
                    fd = self._try(path)
                    if fd is not None:
                        self._fd, self._path, self._depth = fd, path, 1
                        return
                if time.monotonic() > deadline:
                    held = "; ".join(self.holders()) or "none named"
                    raise SlotTimeout(
                        f"no daemon slot came free in {wait:.0f} s: all {size} in {self.directory} are held "
                        f"({held}); wait for those runs, or raise {CAPACITY_ENV} (now {size})")
                time.sleep(POLL_S * (0.5 + random.random()))

    def release(self) -> None:
        """One use fewer; the last one gives the slot back."""
        with self._mutex:
            if not self._depth:
                return
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                os.ftruncate(self._fd, 0)
                os.close(self._fd)
                self._fd = self._path = None


SLOTS = DaemonSlots(Path(tempfile.gettempdir()) / "nova-daemon-slots")
