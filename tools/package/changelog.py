"""CHANGELOG.md entries per chart version, turned into Artifact Hub's ``artifacthub.io/changes``.

An entry is a top-level list item that starts with ``<chart> <version>:``, for example::

    ## Unreleased
    - nova-redis 0.3.0: the sentinel container waits in its own preStop until the hand-over is done;
      a separate generated `sentinel-password`.

Its text is split into one change per clause at the semicolons that are outside parentheses and
backticks, so the entry above gives two changes. Entries that name no chart (``- tools.lint: ...``)
belong to no chart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

_ENTRY = re.compile(r"(?P<chart>[a-z0-9][a-z0-9-]*) (?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?): (?P<text>.+)",
                    re.DOTALL)


@dataclass(frozen=True)
class Entry:
    """One changelog item about one chart version, in the section (``## ...`` heading) it sits under."""

    section: str
    chart: str
    version: str
    text: str


def _items(text: str) -> list[tuple[str, str]]:
    """(section, item text) of every top-level ``- `` item; indented lines continue the item before."""
    items: list[tuple[str, list[str]]] = []
    section = ""
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            section, current = line.lstrip("#").strip(), None
        elif line.startswith("- "):
            current = [line[2:].strip()]
            items.append((section, current))
        elif current is not None and line[:1].isspace() and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [(sec, " ".join(parts)) for sec, parts in items]


def entries(text: str) -> list[Entry]:
    """Every chart entry of a changelog, in file order."""
    found = []
    for section, item in _items(text):
        m = _ENTRY.fullmatch(item)
        if m:
            found.append(Entry(section, m["chart"], m["version"], m["text"].strip()))
    return found


def split_changes(text: str) -> list[str]:
    """Clauses of an entry: split at ``;`` outside parentheses and backticks, without a trailing period."""
    parts: list[str] = []
    depth, in_code, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == "`":
            in_code = not in_code
        elif in_code:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [c for p in parts if (c := p.strip().rstrip(".").strip())]


def changes_for(text: str, chart: str, version: str) -> list[str]:
    """The changes of one chart version: its entries' clauses, in order (empty when it has no entry)."""
    return [c for e in entries(text) if e.chart == chart and e.version == version for c in split_changes(e.text)]


def annotation(changes: list[str]) -> str:
    """``artifacthub.io/changes`` value: a YAML list of strings (Artifact Hub's plain form)."""
    return yaml.safe_dump(changes, default_flow_style=False, width=10**6, allow_unicode=True, sort_keys=False)
