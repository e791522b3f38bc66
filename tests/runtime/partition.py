"""Network partitions between "pods" on loopback addresses of a test's own block, with iptables, always removed.

On one host every daemon connects from 127.0.0.1 (the kernel's source choice on loopback) unless it binds a
source itself, so a rule cannot tell "pod 0 -> pod 1" from "client -> pod 1" by address. Two ways to tell which
pod sent a packet, both set up before the pod's daemons start (a socket keeps what it was created with):

- **Source NAT by group id** (:func:`pod_sources`, used by the Redis harness): each pod's processes run with a
  group id of their own; a ``nat POSTROUTING`` rule (``-m owner --gid-owner <gid> -d <block>/24``) rewrites the
  source of their connections into the block to the pod's address. The cut is then by address pair
  (``drop=``). Redis needs this one: a partitioned master must stay reachable by clients and HAProxy
  (127.0.0.1, not NATed) while its pod's redis and Sentinel cannot reach the other pods, and Sentinel
  announces and compares addresses, so the pod's traffic has to carry the pod's own address.
- **cgroup v2 per pod** (:class:`PodCgroups`, used by the PostgreSQL harness): each pod's processes start in
  a cgroup of their own; ``cgroup_drop=`` rules match the sending socket's cgroup (``-m cgroup --path``).
  PostgreSQL needs this one: every pod's daemons (etcd, Patroni, the postmaster and its WAL receiver) run as
  the same postgres user and group (the harness's ``setpriv --init-groups``, as the image's single user), so a
  group id cannot tell the pods apart, while a cgroup follows every child process a pod forks; and no
  PostgreSQL, Patroni or etcd peer cares about the source address of a connection, so none is rewritten.

Both kinds of rule go through one installer::

    with partition(drop=[("127.A.B.1", "127.A.B.2")], both_directions=True):      # address pairs
        ...
    with partition(cgroup_drop=[(cgroups.path("pod-0"), "127.A.B.12")]):          # sender's cgroup -> address
        ...

An address-pair DROP is two ``raw`` rules: ``PREROUTING`` sees a packet after source NAT (the forward direction
of a connection a pod opened), ``OUTPUT`` sees it with the addresses its socket uses (replies, which conntrack
would otherwise de-NAT to 127.0.0.1 before any later hook). A cgroup DROP is one ``raw OUTPUT`` rule: on
loopback every packet passes OUTPUT exactly once, on the sender's side, with the sender's socket (in PREROUTING
the socket is gone). Established connections stall (packets dropped, not reset), as in a real partition; they
resume when the rules go. Rules are inserted at the head of their chain.

Every rule and cgroup carries the tag ``nova-test-p<pid>-<hex6>-<n>`` (:data:`TAG` is unique per process,
``<n>`` per context): the exit of a context deletes every rule with its tag in ``finally`` and then checks none
is left (raising :class:`PartitionError` if one is); :func:`leftover_rules` lists rules of this process (or of
any nova test, ``mine=False``), :func:`remove_rules` deletes them, and an ``atexit`` hook removes this process's
rules on any normal interpreter exit. Rules and cgroups of a process that died without cleaning up (SIGKILL)
are removed by :func:`remove_stale`, which every context (and every new :class:`PodCgroups`) runs first. Only
addresses of the caller's own 127.A.B.0/24 block may be named.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

TAG_PREFIX = "nova-test-"
TAG = f"{TAG_PREFIX}p{os.getpid()}-{secrets.token_hex(3)}"
# Only tags of this module's own form count as stale when their process is gone (another tool's
# nova-test-<something> rules are never touched by remove_stale).
_OWN_TAG = re.compile(rf"^{TAG_PREFIX}p(\d+)-[0-9a-f]{{6}}(-[\w.-]+)?$")
TABLES = ("raw", "nat", "filter")


class PartitionError(RuntimeError):
    """A rule could not be added or removed, or one was left behind; the message names it."""


def cgroup2_root() -> Path | None:
    """The writable cgroup v2 mount (unified hierarchy, or the hybrid one under /sys/fs/cgroup/unified)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2" and os.access(fields[1], os.W_OK):
                return Path(fields[1])
    return None


def unavailable(cgroups: bool = False) -> str | None:
    """Why partitions cannot be made here (None when they can): root and iptables are needed, and a writable
    cgroup v2 mount for ``cgroup_drop`` rules (``cgroups=True``)."""
    if os.geteuid() != 0:
        return "network partitions need root (iptables rules on loopback)"
    if shutil.which("iptables") is None:
        return "network partitions need iptables (scripts/versions.env APT_PACKAGES)"
    if cgroups and cgroup2_root() is None:
        return "partitions by cgroup need a writable cgroup v2 mount"
    return None


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise PartitionError(f"iptables {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def _loopback(address: str) -> str:
    ip = ipaddress.ip_address(address)
    if not ip.is_loopback or str(ip).startswith("127.0."):
        raise PartitionError(f"{address}: only addresses of a test's own 127.A.B.0/24 block may be partitioned")
    return str(ip)


def _rules(table: str) -> list[str]:
    out = _iptables("-t", table, "-S", check=False).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


def _tag_of(rule: str) -> str | None:
    words = shlex.split(rule)
    for i, word in enumerate(words[:-1]):
        if word == "--comment" and words[i + 1].startswith(TAG_PREFIX):
            return words[i + 1]
    return None


def _mine(tag: str | None, prefix: str) -> bool:
    return tag is not None and (tag == prefix or tag.startswith(prefix + "-"))


def leftover_rules(mine: bool = True, tag: str = TAG) -> list[str]:
    """Rules (``<table>: -A ...``) with ``tag`` (default: any of this process), or with any nova test tag
    (``mine=False``)."""
    found = []
    for table in TABLES:
        for rule in _rules(table):
            found_tag = _tag_of(rule)
            if found_tag and (not mine or _mine(found_tag, tag)):
                found.append(f"{table}: {rule}")
    return found


def remove_rules(tag: str = TAG) -> list[str]:
    """Delete every rule carrying ``tag`` (default: any of this process); returns the ones that would not go."""
    failed = []
    for table in TABLES:
        for rule in _rules(table):
            if _mine(_tag_of(rule), tag):
                done = _iptables("-t", table, "-D", *shlex.split(rule)[1:], check=False)
                if done.returncode != 0:
                    failed.append(f"{table}: {rule}: {done.stderr.strip()}")
    return failed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(tag: str) -> bool:
    own = _OWN_TAG.match(tag)
    return bool(own) and not _pid_alive(int(own.group(1)))  # type: ignore[union-attr]


def remove_stale() -> list[str]:
    """Delete the rules and pod cgroups of nova test processes that no longer run (a SIGKILLed run); returns
    what was removed (``<table>: <rule>`` or ``cgroup: <path>``)."""
    removed = []
    for entry in leftover_rules(mine=False):
        tag = _tag_of(entry.split(": ", 1)[1]) or ""
        if _stale(tag) and not remove_rules(tag):
            removed.append(entry)
    root = cgroup2_root()
    for base in sorted(root.glob(f"{TAG_PREFIX}p*")) if root is not None else []:
        if base.is_dir() and _stale(base.name) and _remove_cgroups(root, base):
            removed.append(f"cgroup: {base}")
    return removed


def _cleanup() -> None:
    if unavailable() is None:
        remove_rules()


atexit.register(_cleanup)
_contexts = itertools.count(1)


@contextlib.contextmanager
def _installed(rules: Sequence[tuple[str, ...]]) -> Iterator[str]:
    """Insert ``(table, chain, *match, target)`` rules under a tag of their own (yielded); on exit delete every
    rule with that tag, then check that none is left (PartitionError naming them otherwise)."""
    if (why := unavailable()) is not None:
        raise PartitionError(why)
    remove_stale()
    tag = f"{TAG}-{next(_contexts)}"
    try:
        for table, chain, *spec in rules:
            _iptables("-t", table, "-I", chain, *spec[:-1], "-m", "comment", "--comment", tag, *spec[-1].split())
        yield tag
    finally:
        failed = remove_rules(tag)
        left = leftover_rules(tag=tag)
        if failed or left:
            raise PartitionError(f"iptables rules tagged {tag} left behind: {failed or left}")


@contextlib.contextmanager
def partition(drop: Iterable[tuple[str, str]] = (), both_directions: bool = False,
              cgroup_drop: Iterable[tuple[str, str]] = ()) -> Iterator[str]:
    """Drop every packet from ``src`` to ``dst`` for each address pair of ``drop`` (and ``dst`` to ``src`` with
    ``both_directions``), and every packet a process in cgroup ``path`` (relative to the cgroup2 mount,
    :meth:`PodCgroups.path`) sends to ``dst`` for each pair of ``cgroup_drop`` (one direction: name both
    sides for a symmetric cut), while the block runs; yields the rules' tag. The rules are gone afterwards
    (checked), also when the block raises."""
    pairs: list[tuple[str, str]] = []
    for src, dst in drop:
        pair = (_loopback(src), _loopback(dst))
        for p in (pair, pair[::-1]) if both_directions else (pair,):
            if p not in pairs:
                pairs.append(p)
    rules: list[tuple[str, ...]] = [("raw", chain, "-s", s, "-d", d, "-j DROP")
                                    for s, d in pairs for chain in ("PREROUTING", "OUTPUT")]
    rules += [("raw", "OUTPUT", "-m", "cgroup", "--path", path, "-d", _loopback(dst), "-j DROP")
              for path, dst in cgroup_drop]
    with _installed(rules) as tag:
        yield tag


@contextlib.contextmanager
def pod_sources(sources: Mapping[int, str], network: str) -> Iterator[str]:
    """Source-NAT the connections that processes of group id ``gid`` open to ``network`` (the block's /24) to
    the address ``sources[gid]``; yields the rules' tag; removed (and checked) on exit."""
    net = ipaddress.ip_network(network)
    _loopback(str(net.network_address + 1))
    rules = [("nat", "POSTROUTING", "-m", "owner", "--gid-owner", str(gid), "-d", str(net),
              f"-j SNAT --to-source {_loopback(address)}") for gid, address in sources.items()]
    with _installed(rules) as tag:
        yield tag


def _remove_cgroups(root: Path, base: Path) -> bool:
    """Move every process left in ``base``'s cgroups to the root cgroup and remove them; True when gone."""
    for sub in sorted((p for p in base.iterdir() if p.is_dir()), reverse=True) if base.exists() else []:
        with contextlib.suppress(OSError):
            for pid in (sub / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()
    return not base.exists()


class PodCgroups:
    """One cgroup v2 per pod (``<root>/<TAG>-<n>-<label>/<pod>``), for ``cgroup_drop`` rules. A process must
    start in its cgroup (:meth:`wrap`): a socket keeps the cgroup its process had when it was created, so
    moving a running daemon would leave its open connections unmatched. :meth:`cleanup` (or the ``with``
    exit) moves any process left to the root cgroup and removes them; :func:`remove_stale` removes those of a
    process that died first."""

    def __init__(self, label: str) -> None:
        if (why := unavailable(cgroups=True)) is not None:
            raise PartitionError(why)
        remove_stale()
        self.root: Path = cgroup2_root()  # type: ignore[assignment]
        self.base = f"{TAG}-{next(_contexts)}-{label}"
        (self.root / self.base).mkdir()

    def path(self, pod: str) -> str:
        """The cgroup of ``pod``, relative to the cgroup2 mount (what iptables' ``--path`` takes)."""
        return f"{self.base}/{pod}"

    def wrap(self, pod: str, cmd: Sequence[str]) -> list[str]:
        """``cmd`` started in ``pod``'s cgroup: ``sh`` (as the caller, root) writes itself into the cgroup
        ("0": the writer) and execs ``cmd``, so the PID, session and log stay the caller's."""
        directory = self.root / self.base / pod
        directory.mkdir(exist_ok=True)
        return ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(directory / "cgroup.procs"), *cmd]

    def cleanup(self) -> None:
        if not _remove_cgroups(self.root, self.root / self.base):
            raise PartitionError(f"cgroup {self.root / self.base} could not be removed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
