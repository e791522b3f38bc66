"""Network partitions on loopback for the PostgreSQL fault tests: iptables DROP rules, always removed.

Minimal stand-in with the API of faults-redis's tests/runtime/partition.py (the integrator unifies them):

    with partition(drop=[(src_ip, dst_ip), ...], cgroup_drop=[(cgroup_path, dst_ip), ...]):
        ...

``drop``: packets from ``src_ip`` to ``dst_ip`` (one direction: list both for a symmetric cut). That needs
daemons whose outgoing connections leave from their own address (Redis binds them). PostgreSQL, Patroni and
etcd clients do not bind a source: on loopback every connection they open leaves from 127.0.0.1, so an
address pair cannot tell which pod sent a packet. ``cgroup_drop`` classifies by the sending process instead:
packets that a process in cgroup v2 ``cgroup_path`` (relative to the cgroup2 mount, see pg_faults.PodCgroups)
sends to ``dst_ip``. On loopback every packet passes OUTPUT exactly once, on the sender's side, so rules in
OUTPUT see every packet of both directions with the sender's socket.

Every rule carries one comment unique to the run (``nova-partition-<pid>-<random>``); on exit (also on an
exception or KeyboardInterrupt) every rule with that comment is deleted, whether or not it was added by this
call; rules of a run whose process died first are swept by the next partition (:func:`sweep_stale`).
:func:`leftover_rules` lists rules with the ``nova-partition-`` prefix still installed (a test asserts
none of its own remain). Only addresses inside the caller's own 127.x.y.0/24 block may be named (``owned``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PREFIX = "nova-partition-"
CHAIN = "OUTPUT"


def available() -> str | None:
    """None when partitions can be made here; else why not (for a skip message)."""
    if os.geteuid() != 0:
        return "partitions need root (iptables)"
    if shutil.which("iptables") is None:
        return "iptables is not installed (scripts/versions.env APT_PACKAGES)"
    return None


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, check=False)


def _rules() -> list[str]:
    out = _iptables("-S", CHAIN)
    if out.returncode != 0:
        raise RuntimeError(f"iptables -S {CHAIN} failed: {out.stderr.strip()}")
    return out.stdout.splitlines()


def own_prefix() -> str:
    """The comment prefix of this process's partitions (other runs on the host may hold theirs meanwhile)."""
    return f"{PREFIX}{os.getpid()}-"


def leftover_rules(comment: str = PREFIX) -> list[str]:
    """Installed OUTPUT rules whose comment starts with ``comment`` (default: any partition's; pass
    :func:`own_prefix` to see only this process's)."""
    return [r for r in _rules() if f'--comment "{comment}' in r or f"--comment {comment}" in r]


def _remove(comment: str) -> list[str]:
    """Delete every rule carrying exactly ``comment``; returns the ones that could not be deleted."""
    failed = []
    for rule in leftover_rules(comment):
        spec = rule.split()[2:]  # "-A OUTPUT ..." -> the match and target
        args = [a.strip('"') for a in spec]
        if _iptables("-D", CHAIN, *args).returncode != 0:
            failed.append(rule)
    return failed


def sweep_stale() -> list[str]:
    """Remove the rules of runs whose process is gone (killed before its ``finally`` ran); returns them."""
    stale = set()
    for rule in leftover_rules():
        comment = rule.split("--comment", 1)[1].split()[0].strip('"')
        pid = comment[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            stale.add(comment)
    for comment in stale:
        _remove(comment)
    return sorted(stale)


@contextlib.contextmanager
def partition(drop: Sequence[tuple[str, str]] = (), cgroup_drop: Sequence[tuple[str, str]] = (),
              owned: Callable[[str], bool] | None = None) -> Iterator[str]:
    """Install DROP rules for the block; yield the run's comment; remove them on exit, whatever happens."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    for address in [a for pair in drop for a in pair] + [d for _, d in cgroup_drop]:
        if owned is not None and not owned(address):
            raise ValueError(f"{address} is not an address this run owns")
    sweep_stale()
    comment = f"{own_prefix()}{os.urandom(4).hex()}"
    tag = ["-m", "comment", "--comment", comment, "-j", "DROP"]
    try:
        for src, dst in drop:
            _check(_iptables("-I", CHAIN, "-s", src, "-d", dst, *tag))
        for path, dst in cgroup_drop:
            _check(_iptables("-I", CHAIN, "-m", "cgroup", "--path", path, "-d", dst, *tag))
        yield comment
    finally:
        failed = _remove(comment)
        if failed:
            raise RuntimeError(f"could not remove partition rules: {failed}")


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"iptables failed: {result.stderr.strip()}")
