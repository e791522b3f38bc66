"""Read an annotated values.yaml (ruamel.yaml round-trip, so every key keeps its line) into a tree of keys.

The annotation syntax (docs/values-annotations.md): the comment lines directly above a key, with no blank
line between, hold

* ``# -- text``: the key's description; following ``# text`` lines continue it;
* ``# @schema {flow mapping}``: hints merged into the key's JSON schema (several lines are merged in order).

Other comment lines in that block (a section title, ``## @param`` lines of other tools) are ignored.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.schema.errors import Problem

DESCRIPTION = re.compile(r"^#\s?--(?:\s|$)")
SCHEMA = re.compile(r"^#\s?@schema(?:\s|$)")
# YAML 1.1 (what Helm reads values with) turns these plain scalars into booleans; ruamel (YAML 1.2) does not.
YAML11_BOOLS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
)


@dataclass
class Key:
    """One mapping key of values.yaml with its annotation."""

    path: tuple[str, ...]
    value: Any  # plain Python data (dict/list/str/int/float/bool/None)
    line: int  # 1-based line of the key
    description: str | None = None
    hints: dict[str, Any] = field(default_factory=dict)
    hint_line: int | None = None  # line of the first ``# @schema`` line
    children: list[Key] = field(default_factory=list)  # mapping children, in file order

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def walk(self) -> Iterator[Key]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Values:
    """A parsed values.yaml: the root keys, the plain data, and the problems found while reading."""

    file: Path
    data: dict[str, Any]
    keys: list[Key]
    problems: list[Problem]

    def walk(self) -> Iterator[Key]:
        for key in self.keys:
            yield from key.walk()

    def find(self, path: tuple[str, ...]) -> Key | None:
        keys = self.keys
        found: Key | None = None
        for part in path:
            found = next((k for k in keys if k.name == part), None)
            if found is None:
                return None
            keys = found.children
        return found


def load(file: Path) -> Values:
    """Parse ``file``; YAML errors and annotation errors are returned as problems, never raised."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:  # a chart may have no values.yaml: no values, nothing to document
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        return Values(file, {}, [], [Problem(file, None, f"cannot read: {exc}")])
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return Values(file, {}, [], [Problem(file, line, f"invalid YAML: {what}")])
    except YAMLError as exc:
        return Values(file, {}, [], [Problem(file, None, f"invalid YAML: {exc}")])
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return Values(file, {}, [], [Problem(file, 1, "values.yaml must be a mapping at the top level")])
    reader = _Reader(file, text.splitlines())
    data = reader.plain(doc, ())
    keys = reader.mapping(doc, data, ())
    reader.orphans()
    return Values(file, data, keys, reader.problems)


class _Reader:
    def __init__(self, file: Path, lines: list[str]):
        self.file = file
        self.lines = lines
        self.used: set[int] = set()  # 0-based comment lines that belong to a key
        self.problems: list[Problem] = []

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, node: Any, plain: dict[str, Any], path: tuple[str, ...]) -> list[Key]:
        keys: list[Key] = []
        for name in node:
            line0 = _key_line0(node, name)
            line = line0 + 1 if line0 is not None else None
            if not isinstance(name, str):
                self.problem(line, f"key {name!r} under {'.'.join(path) or 'the top level'} is not a string: "
                                   "quote it (Helm needs string keys)")
                continue
            value = node[name]
            key = Key(path + (name,), plain[name], line or 0)
            if line0 is not None:
                self.annotation(key, line0)
            if isinstance(value, dict):
                key.children = self.mapping(value, plain[name], key.path)
            elif isinstance(value, list):
                self.sequence(value, key.path)
            keys.append(key)
        return keys

    def sequence(self, node: Any, path: tuple[str, ...]) -> None:
        # Keys inside list items are not documented one by one, but their comment blocks are not orphans.
        for i, item in enumerate(node):
            if isinstance(item, dict):
                self.comment_blocks(item)
            elif isinstance(item, list):
                self.sequence(item, path + (str(i),))

    def comment_blocks(self, node: Any) -> None:
        """Mark the comment blocks of keys inside list items as used (they are not documented one by one)."""
        for name, value in node.items():
            line0 = _pos(node, "key", name)
            if line0 is not None:
                self.annotation(Key(("-", str(name)), None, line0), line0 - 1, quiet=True)
            if isinstance(value, dict):
                self.comment_blocks(value)
            elif isinstance(value, list):
                self.sequence(value, ())

    def annotation(self, key: Key, line0: int, quiet: bool = False) -> None:
        block: list[int] = []
        i = line0 - 1
        while i >= 0 and self.lines[i].lstrip().startswith("#"):
            block.append(i)
            i -= 1
        block.reverse()
        if quiet:
            self.used.update(block)
            return
        description: list[str] | None = None
        for i in block:
            text = self.lines[i].strip()
            if DESCRIPTION.match(text):
                if description is not None:
                    self.problem(i + 1, f"second `# --` description above {key.dotted}: "
                                        "join them into one (continuation lines start with `# `)")
                description = [DESCRIPTION.sub("", text, count=1).strip()]
                self.used.add(i)
            elif SCHEMA.match(text):
                self.used.add(i)
                self.hints(key, i, SCHEMA.sub("", text, count=1).strip())
                if description is not None:
                    description.append("\n")  # a hint line ends the description's paragraph
            elif description is not None and (text == "#" or text.startswith("# ")):
                self.used.add(i)
                description.append(text[2:].rstrip() if text != "#" else "\n")
        if description is not None:
            key.description = _join(description)
            if not key.description:
                self.problem(line0 + 1, f"empty `# --` description above {key.dotted}: say what it does")

    def hints(self, key: Key, i: int, text: str) -> None:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            parsed = yaml.load(text, Loader=loader) if text else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problem(i + 1, f"malformed @schema annotation of {key.dotted}: {problem}; "
                                "expected a YAML flow mapping such as {minimum: 1, maximum: 9}")
            return
        if not isinstance(parsed, dict):
            self.problem(i + 1, f"malformed @schema annotation of {key.dotted}: expected a YAML flow mapping "
                                f"such as {{minimum: 1}}, got {text or 'nothing'}")
            return
        key.hints.update(parsed)
        if key.hint_line is None:
            key.hint_line = i + 1

    def plain(self, node: Any, path: tuple[str, ...]) -> Any:
        """ruamel's round-trip types as plain JSON-able Python data (what Helm sees)."""
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if type(v) is str and v in YAML11_BOOLS:
                    self._yaml11(v, path + (str(k),), _pos(node, "value", k))
                out[str(k)] = self.plain(v, path + (str(k),))
            return out
        if isinstance(node, list):
            items = []
            for i, v in enumerate(node):
                if type(v) is str and v in YAML11_BOOLS:
                    self._yaml11(v, path + (str(i),), _pos(node, "item", i))
                items.append(self.plain(v, path + (str(i),)))
            return items
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, (datetime.date, datetime.datetime)):
            return node.isoformat()
        return str(node)

    def _yaml11(self, value: str, path: tuple[str, ...], line: int | None) -> None:
        self.problem(line, f"{'.'.join(path)}: Helm reads the plain scalar `{value}` as a boolean (YAML 1.1): "
                           "write true/false, or quote it to keep a string")

    def orphans(self) -> None:
        for i, raw in enumerate(self.lines):
            text = raw.strip()
            if i in self.used:
                continue
            if DESCRIPTION.match(text) or SCHEMA.match(text):
                what = "description" if DESCRIPTION.match(text) else "@schema annotation"
                self.problem(i + 1, f"{what} is not directly above a key (no blank line or other text may "
                                    "come between the comment block and its key)")


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if part == "\n":
            text = text.rstrip(" ") + ("\n" if text and not text.endswith("\n") else "")
        elif part:
            text += (" " if text and not text.endswith("\n") else "") + part
    return text.strip()


def _pos(node: Any, what: str, key: Any) -> int | None:
    """1-based line of a mapping key / value or a list item, from ruamel's line-column info."""
    try:
        return int(getattr(node.lc, what)(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def _key_line0(node: Any, name: Any) -> int | None:
    """0-based line of a key; a key merged in with `<<: *anchor` has the line (and comments) of its source."""
    try:
        return int(node.lc.key(name)[0])
    except (AttributeError, KeyError, TypeError, IndexError):
        pass
    for source in getattr(node, "merge", None) or []:
        source = source[1] if isinstance(source, tuple) else source
        if isinstance(source, dict) and name in source:
            return _key_line0(source, name)
    return None
