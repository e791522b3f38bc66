"""Free loopback addresses and ports for tests that start real daemons, so two runs on one host never collide.

A run claims an *address block*: a random ``127.A.B.0/24`` (A in 1..254: 127.0.x.x is left to the host, e.g.
127.0.0.1, Debian's 127.0.1.1, systemd-resolved's 127.0.0.53). A block is ours when

- an exclusive ``flock`` on ``$TMPDIR/nova-loopback/127.A.B.lock`` is held (concurrent runs of these tests
  never pick the same block; the kernel drops the lock when the process dies, so no stale claims), and
- nothing on the host listens on any address of the block (the kernel's sock_diag, else ``/proc/net/tcp``).

A claim first takes this process's daemon slot (slots.py: a cap, for the whole host, on the processes of all runs
that run daemons at once), waiting while the host has none free; the block's release gives it back.

The daemons keep the ports the chart renders (6379, 5432, ...) on the block's addresses. Only a port that a
wildcard listener holds (``0.0.0.0:6379`` or ``[::]:6379`` blocks that port on every address, e.g. a Redis in
docker) is moved to a free one, by the harness's ``--set`` (see :func:`port_for`).

The race: between the check and a daemon's own ``bind()``, another process could still take an address:port.
The harnesses detect a daemon that exits because its bind failed (:func:`bind_failure`), raise
:class:`BindError` (one line: the address and what holds it, e.g. ``pid 4242 (redis-server *:6379)``), and
:func:`retry_on_bind` starts again on a new block.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

from tests.runtime import slots

LOCK_DIR = Path(tempfile.gettempdir()) / "nova-loopback"
WILDCARDS = frozenset({"0.0.0.0", "::"})
MOVED_PORT_RANGE = (20000, 32767)  # below Linux's ephemeral range (32768-60999): no outgoing socket takes it
BIND_FAILED = ("address already in use", "cannot bind socket", "could not bind", "eaddrinuse")
T = TypeVar("T")


class BindError(RuntimeError):
    """An address:port a daemon needs is taken; the message names it and its holder in one line."""

    def __init__(self, address: str, port: int, holder: str) -> None:
        super().__init__(f"cannot bind {address}:{port}: {holder}")
        self.address, self.port = address, port


# ---- what listens on this host ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket of this network namespace."""

    address: str
    port: int
    inode: int


def _decode_v4(hexaddr: str) -> str:
    return socket.inet_ntoa(struct.pack("=I", int(hexaddr, 16)))


def _decode_v6(hexaddr: str) -> str:
    raw = b"".join(struct.pack("=I", int(hexaddr[i:i + 8], 16)) for i in range(0, 32, 8))
    if raw[:12] == b"\0" * 10 + b"\xff\xff":  # ::ffff:a.b.c.d is an IPv4 address
        return socket.inet_ntoa(raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_proc_net_tcp(text: str, v6: bool = False) -> list[Listener]:
    """The LISTEN sockets (state 0A) of a /proc/net/tcp or tcp6 table."""
    out: list[Listener] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":
            continue
        addr, port = fields[1].rsplit(":", 1)
        out.append(Listener(_decode_v6(addr) if v6 else _decode_v4(addr), int(port, 16), int(fields[9])))
    return out


def listeners() -> list[Listener]:
    """The listening TCP sockets of this network namespace: from the kernel's sock_diag netlink interface (it
    walks the listening sockets only), else from /proc/net/tcp and tcp6. Reading those files walks every
    socket hash bucket: 2.3 ms on an idle 24 GiB host, and the harnesses ask many times a second while daemons
    start; sock_diag answers in 25 us."""
    with contextlib.suppress(OSError):
        return sock_diag_listeners()
    found: list[Listener] = []
    for name, v6 in (("tcp", False), ("tcp6", True)):
        with contextlib.suppress(OSError):
            found += parse_proc_net_tcp(Path(f"/proc/net/{name}").read_text(), v6)
    return found


# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20
_NLM_F_REQUEST, _NLM_F_DUMP, _NLMSG_ERROR, _NLMSG_DONE = 0x1, 0x300, 2, 3
_TCP_LISTEN = 10
_NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQ = struct.Struct("=BBBxI48x")  # inet_diag_req_v2: family, protocol, ext, states, an empty socket id
# An inet_diag_msg answer: family, state, timer, retrans (1 byte each), the socket id (source and destination
# port big-endian at 4 and 6, source and destination address 16 bytes each at 8 and 24, interface, cookie), then
# expires, rqueue, wqueue, uid and the inode at 68.


def sock_diag_listeners() -> list[Listener]:
    """Listening TCP sockets, IPv4 and IPv6, as the kernel's inet_diag dumps them (``ss -ltn`` asks the same)."""
    found: list[Listener] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            request = _DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN)
            nl.send(_NLMSG_HDR.pack(_NLMSG_HDR.size + len(request), _SOCK_DIAG_BY_FAMILY,
                                    _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0) + request)
            done = False
            while not done:
                data = nl.recv(1 << 16)
                offset = 0
                while offset + _NLMSG_HDR.size <= len(data):
                    length, kind, _, _, _ = _NLMSG_HDR.unpack_from(data, offset)
                    body = offset + _NLMSG_HDR.size
                    if kind == _NLMSG_DONE:
                        done = True
                        break
                    if kind == _NLMSG_ERROR:
                        errno = -struct.unpack_from("=i", data, body)[0]
                        raise OSError(errno, f"sock_diag: {os.strerror(errno)}")
                    if kind == _SOCK_DIAG_BY_FAMILY:
                        msg_family = data[body]
                        port = struct.unpack_from("!H", data, body + 4)[0]
                        raw = data[body + 8:body + 24]
                        if msg_family == socket.AF_INET:
                            address = socket.inet_ntoa(raw[:4])
                        elif raw[:12] == b"\0" * 10 + b"\xff\xff":  # ::ffff:a.b.c.d is an IPv4 address
                            address = socket.inet_ntoa(raw[12:])
                        else:
                            address = socket.inet_ntop(socket.AF_INET6, raw)
                        found.append(Listener(address, port, struct.unpack_from("=I", data, body + 68)[0]))
                    offset += (length + 3) & ~3
                if not data:
                    break
    return found


def blocking(address: str, port: int, table: Iterable[Listener] | None = None) -> list[Listener]:
    """Listeners that make ``bind(address, port)`` fail: the same address and port, or a wildcard on the port."""
    return [entry for entry in (listeners() if table is None else table)
            if entry.port == port and (entry.address == address or entry.address in WILDCARDS)]


def _owner(inode: int) -> tuple[int, str] | None:
    """(pid, command line) of the process holding socket ``inode``; None when not visible (another user)."""
    target = f"socket:[{inode}]"
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        cmd = " ".join((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split())
                        return int(proc.name), cmd or (proc / "comm").read_text().strip()
    return None


# How much of the holder's command line an error message shows.
OWNER_CMD_CHARS = 120


def holder(address: str, port: int) -> str:
    """Who holds ``address:port`` now, for an error message: ``held by pid 4242 (redis-server ...) on *:6379``."""
    found = blocking(address, port)
    if not found:
        return "nothing listens there now (it was taken and released while the daemon started)"
    entry = found[0]
    where = "*" if entry.address in WILDCARDS else entry.address
    owner = _owner(entry.inode)
    who = f"pid {owner[0]} ({owner[1][:OWNER_CMD_CHARS]})" if owner else "a process this user cannot see"
    return f"held by {who} listening on {where}:{entry.port}"


# ---- claiming a block -------------------------------------------------------------------------------------


@dataclass
class AddressBlock:
    """127.A.B.1..254, claimed for this run until :meth:`release` (the lock file's descriptor is held)."""

    prefix: str  # "127.A.B"
    lock_path: Path
    lock_fd: int | None
    slot: bool = False  # holds a use of this process's daemon slot (slots.py) until release

    def host(self, n: int) -> str:
        if not 1 <= n <= 254:
            raise ValueError(f"host {n} is outside the block {self.prefix}.0/24")
        return f"{self.prefix}.{n}"

    def contains(self, address: str) -> bool:
        return address.startswith(self.prefix + ".")

    def release(self) -> None:
        if self.lock_fd is not None:
            with contextlib.suppress(OSError):
                self.lock_path.unlink()  # while still locked: see _lock for why the next claimer re-checks
            os.close(self.lock_fd)
            self.lock_fd = None
        if self.slot:
            self.slot = False
            slots.SLOTS.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock(path: Path) -> int | None:
    """An exclusive flock on ``path`` (created), or None when another run holds it. A holder unlinks the file
    before it lets go, so after locking, the path must still name the file that was locked."""
    fd = slots.try_flock(path)
    if fd is None:
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def claim_block(rng: random.Random | None = None, attempts: int = 200) -> AddressBlock:
    """A random free 127.A.B.0/24 block, locked for this process, which holds a daemon slot (slots.py, waited
    for when every slot of the host is held) until the block is released."""
    slots.SLOTS.acquire()
    try:
        block = _claim_block(rng, attempts)
    except BaseException:
        slots.SLOTS.release()
        raise
    block.slot = True
    return block


def _claim_block(rng: random.Random | None, attempts: int) -> AddressBlock:
    rng = rng or random.Random()
    slots.shared_dir(LOCK_DIR)
    for _ in range(attempts):
        prefix = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}"
        path = LOCK_DIR / f"{prefix}.lock"
        fd = _lock(path)
        if fd is None:
            continue
        block = AddressBlock(prefix, path, fd)
        if any(block.contains(entry.address) for entry in listeners()):
            block.release()  # someone else's daemons use these addresses
            continue
        return block
    raise RuntimeError(f"no free 127.x.y.0/24 loopback block after {attempts} tries (locks in {LOCK_DIR})")


def free_port(address: str, rng: random.Random | None = None, attempts: int = 200) -> int:
    """A port that ``address`` can bind now (no wildcard holder either), outside the ephemeral range."""
    rng = rng or random.Random()
    for _ in range(attempts):
        port = rng.randint(*MOVED_PORT_RANGE)
        with contextlib.closing(socket.socket()) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port on {address} in {MOVED_PORT_RANGE} after {attempts} tries")


def port_for(default: int) -> int:
    """``default`` unless a wildcard listener holds it (then it is taken on every address): a free port then."""
    if not any(entry.port == default and entry.address in WILDCARDS for entry in listeners()):
        return default
    return free_port("127.0.0.1")


def bind_listener(address: str, port: int, backlog: int = 64) -> socket.socket:
    """A listening socket on ``address:port`` (SO_REUSEADDR); a taken address raises :class:`BindError`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise BindError(address, port, holder(address, port) + f" ({exc.strerror})") from None
    sock.listen(backlog)
    return sock


# ---- a daemon that could not bind -------------------------------------------------------------------------


def bind_failure(log_text: str, binds: Sequence[tuple[str, int]]) -> BindError | None:
    """A :class:`BindError` when a daemon's log says its bind failed, naming the first of ``binds`` (its
    address:port pairs) that someone holds (else the first one); None when the log says nothing of it."""
    if not any(marker in log_text.lower() for marker in BIND_FAILED):
        return None
    held = [(a, p) for a, p in binds if blocking(a, p)]
    address, port = (held or list(binds))[0]
    return BindError(address, port, holder(address, port))


def session_sockets(sid: int) -> set[int]:
    """Socket inodes held by the processes of session ``sid`` (a daemon started with start_new_session and
    whatever its start script exec'd or forked)."""
    inodes: set[int] = set()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3]) != sid:
                continue
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
    return inodes


def wait_listening(binds: dict[str, list[tuple[str, int]]], exited: Callable[[str], str | None],
                   session: Callable[[str], int], timeout: float = 20) -> None:
    """Wait until every process's address:port pairs listen, on sockets of its own session (``session(name)``:
    the session id; a socket someone else holds there does not count). ``exited(name)`` returns the log of a
    process that has exited (None while it runs); an exit whose log shows a failed bind raises
    :class:`BindError`. Other exits and a timeout return quietly: the caller's own waits report those with the
    daemons' logs."""
    deadline = time.monotonic() + timeout
    pending = dict(binds)
    while pending and time.monotonic() < deadline:
        table = listeners()
        for name, pairs in list(pending.items()):
            log = exited(name)
            if log is not None:
                failure = bind_failure(log, pairs)
                if failure:
                    raise failure
                del pending[name]
                continue
            found = [[e.inode for e in table if e.address == a and e.port == p] for a, p in pairs]
            if all(found):
                own = session_sockets(session(name))
                if all(any(inode in own for inode in inodes) for inodes in found):
                    del pending[name]
        time.sleep(0.1)


def retry_on_bind(start: Callable[[], T], attempts: int = 3, what: str = "the daemons") -> T:
    """``start()`` again (it must claim a new block and clean up after itself) while it raises BindError."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except BindError as exc:
            if attempt == attempts:
                raise BindError(exc.address, exc.port,
                                f"{str(exc).split(': ', 1)[1]} (gave up starting {what} after {attempts} "
                                "address blocks)") from None
    raise AssertionError("unreachable")
