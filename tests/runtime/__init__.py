"""Runtime tests: the charts' rendered configuration run by real daemons."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tools import manifest


@functools.lru_cache(maxsize=64)
def parsed_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` (libyaml, tools.manifest.load), parsed once per distinct text: the harnesses read
    the rendered patroni.yml and the charts' values.yaml while they poll and at every start (pure-Python PyYAML
    took 40 ms for a values.yaml). Shared between callers: read it, never change it."""
    return manifest.load(text)


def log_block(name: str, state: str, log: Path, lines: int = 15) -> str:
    """One process's part of a harness failure message: its name and state, then the last ``lines`` lines of its
    log (or why it cannot be read). The harnesses remove their logs when they stop, so a failure carries these."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        tail = [f"(unreadable: {exc})"]
    return f"--- {name} ({state}), {log.name}, last {len(tail)} lines:\n" + "\n".join(tail)
