"""Network partitions between loopback addresses of a test's own block, with iptables, always removed.

Two pieces, both context managers, both root-only (:func:`unavailable` says why not):

- :func:`pod_sources` gives each "pod" its own source address. On one host every daemon connects from
  127.0.0.1 (the kernel's choice for loopback), so "pod 0 -> pod 1" cannot be told from "client -> pod 1".
  A harness starts each pod's processes with their own group id, and a SNAT rule in ``nat POSTROUTING``
  (``-m owner --gid-owner <gid> -d <block>/24``) rewrites the source of their connections into the block to
  the pod's address. Clients and HAProxy keep 127.0.0.1. Rules only for connections opened after it is set
  up, so it must be entered before the daemons start.
- :func:`partition` drops packets by (source, destination) address pair::

      with partition(drop=[("127.A.B.1", "127.A.B.2")], both_directions=True):
          ...  # pod 0 and pod 1 cannot talk; everything else passes

  Each pair is two ``raw``-table rules: ``PREROUTING`` sees a packet after source NAT (the forward direction
  of a connection a pod opened), ``OUTPUT`` sees it with the addresses its socket uses (replies, which
  conntrack would otherwise de-NAT to 127.0.0.1 before any later hook). Established connections stall (their
  packets are dropped, not reset), as in a real partition; they resume when the rules go.

Every rule carries ``-m comment --comment nova-test-p<pid>-<token>-<n>`` (:data:`TAG` is unique per process,
``<n>`` per context): the exit of a context deletes every rule with its tag in ``finally`` and then checks
none is left (raising :class:`PartitionError` if one is); :func:`leftover_rules` lists rules of this process
(or of any nova test, ``mine=False``), :func:`remove_rules` deletes them, and an ``atexit`` hook removes this
process's rules on any normal interpreter exit. Rules of a process that died without cleaning up (SIGKILL)
are removed by :func:`remove_stale`, which every context runs before adding its own. Only addresses of the
caller's own 127.A.B.0/24 block may be named.
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

TAG_PREFIX = "nova-test-"
TAG = f"{TAG_PREFIX}p{os.getpid()}-{secrets.token_hex(3)}"
# Only tags of this module's own form count as stale when their process is gone (another tool's
# nova-test-<something> rules are never touched by remove_stale).
_OWN_TAG = re.compile(rf"^{TAG_PREFIX}p(\d+)-[0-9a-f]{{6}}(-\d+)?$")
TABLES = ("raw", "nat", "filter")


class PartitionError(RuntimeError):
    """A rule could not be added or removed, or one was left behind; the message names it."""


def unavailable() -> str | None:
    """Why partitions cannot be made here (None when they can): root and iptables are needed."""
    if os.geteuid() != 0:
        return "network partitions need root (iptables rules on loopback)"
    if shutil.which("iptables") is None:
        return "network partitions need iptables"
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


def remove_stale() -> list[str]:
    """Delete the rules of nova test processes that no longer run (a SIGKILLed run); returns what was removed."""
    removed = []
    for entry in leftover_rules(mine=False):
        tag = _tag_of(entry.split(": ", 1)[1]) or ""
        own = _OWN_TAG.match(tag)
        if own and not _pid_alive(int(own.group(1))) and not remove_rules(tag):
            removed.append(entry)
    return removed


def _cleanup() -> None:
    if unavailable() is None:
        remove_rules()


atexit.register(_cleanup)
_contexts = itertools.count(1)


@contextlib.contextmanager
def _installed(rules: Sequence[tuple[str, ...]]) -> Iterator[str]:
    """Append ``(table, chain, *match, target)`` rules under a tag of their own (yielded); on exit delete every
    rule with that tag, then check that none is left (PartitionError naming them otherwise)."""
    remove_stale()
    tag = f"{TAG}-{next(_contexts)}"
    try:
        for table, chain, *spec in rules:
            _iptables("-t", table, "-A", chain, *spec[:-1], "-m", "comment", "--comment", tag, *spec[-1].split())
        yield tag
    finally:
        failed = remove_rules(tag)
        left = leftover_rules(tag=tag)
        if failed or left:
            raise PartitionError(f"iptables rules tagged {tag} left behind: {failed or left}")


@contextlib.contextmanager
def partition(drop: Iterable[tuple[str, str]], both_directions: bool = False) -> Iterator[list[tuple[str, str]]]:
    """Drop every packet from ``src`` to ``dst`` for each pair (and ``dst`` to ``src`` with
    ``both_directions``) while the block runs; yields the pairs dropped. The rules are gone afterwards
    (checked), also when the block raises."""
    if (why := unavailable()) is not None:
        raise PartitionError(why)
    pairs: list[tuple[str, str]] = []
    for src, dst in drop:
        pair = (_loopback(src), _loopback(dst))
        for p in (pair, pair[::-1]) if both_directions else (pair,):
            if p not in pairs:
                pairs.append(p)
    rules = [("raw", chain, "-s", s, "-d", d, "-j DROP") for s, d in pairs for chain in ("PREROUTING", "OUTPUT")]
    with _installed(rules):
        yield pairs


@contextlib.contextmanager
def pod_sources(sources: Mapping[int, str], network: str) -> Iterator[None]:
    """Source-NAT the connections that processes of group id ``gid`` open to ``network`` (the block's /24) to
    the address ``sources[gid]``; removed (and checked) on exit."""
    if (why := unavailable()) is not None:
        raise PartitionError(why)
    net = ipaddress.ip_network(network)
    _loopback(str(net.network_address + 1))
    rules = [("nat", "POSTROUTING", "-m", "owner", "--gid-owner", str(gid), "-d", str(net),
              f"-j SNAT --to-source {_loopback(address)}") for gid, address in sources.items()]
    with _installed(rules):
        yield
