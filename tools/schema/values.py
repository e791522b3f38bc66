"""Read an annotated values.yaml into a tree of keys: libyaml gives the structure with each key's line
(tools.schema.yamlread, scalars resolved as Helm does), a scan of the lines above each key its annotation.

The annotation syntax (docs/values-annotations.md): the comment lines directly above a key, with no blank
line between, hold

* ``# -- text``: the key's description; following ``# text`` lines continue it;
* ``# @schema {flow mapping}``: hints merged into the key's JSON schema (several lines are merged in order).

Other comment lines in that block (a section title, ``## @param`` lines of other tools) are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.schema import yamlread
from tools.schema.errors import Problem

DESCRIPTION = re.compile(r"^#\s?--(?:\s|$)")
SCHEMA = re.compile(r"^#\s?@schema(?:\s|$)")
YAML11_BOOLS = yamlread.YAML11_BOOLS


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
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:  # a chart may have no values.yaml: no values, nothing to document
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        return Values(file, {}, [], [Problem(file, None, f"cannot read: {exc}")])
    try:
        root = yamlread.compose(text)
    except yamlread.YAMLError as exc:
        return Values(file, {}, [], [Problem(file, yamlread.error_line(exc),
                                             f"invalid YAML: {yamlread.error_text(exc)}")])
    if root is None or (isinstance(root, yamlread.ScalarNode) and yamlread.scalar(root) is None):
        root = yamlread.MappingNode(yamlread.CORE + "map", [])
    if not isinstance(root, yamlread.MappingNode):
        return Values(file, {}, [], [Problem(file, 1, "values.yaml must be a mapping at the top level")])
    reader = _Reader(file, text.splitlines())
    data, keys = reader.mapping(root, (), documented=True)
    reader.apply_hints()
    reader.orphans()
    return Values(file, data, keys, reader.problems)


class _Reader:
    """One walk over the node tree: the plain data (what Helm sees), the documented keys, and problems."""

    def __init__(self, file: Path, lines: list[str]):
        self.file = file
        self.lines = lines
        self.used: set[int] = set()  # 0-based comment lines that belong to a key
        self.problems: list[Problem] = []
        self.pending: list[tuple[Key, int, str]] = []  # (key, 0-based line, text) of each `# @schema` line
        self.active: set[int] = set()  # ids of the collection nodes being read (an alias may not loop)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, node: yamlread.MappingNode, path: tuple[str, ...],
                documented: bool) -> tuple[dict[str, Any], list[Key]]:
        """The mapping's data and, when its keys are documented one by one, its Keys (else their comment blocks
        are only marked as used: keys inside list items are not documented)."""
        data: dict[str, Any] = {}
        keys: list[Key] = []
        first: dict[str, int] = {}
        where = ".".join(path) or "the top level"
        for key_node, value_node in yamlread.pairs(node):
            line0 = key_node.start_mark.line
            name = yamlread.scalar(key_node) if isinstance(key_node, yamlread.ScalarNode) else None
            if not isinstance(name, str):
                shown = name if isinstance(key_node, yamlread.ScalarNode) else "(a collection)"
                self.problem(line0 + 1, f"key {shown!r} under {where} is not a string: quote it (Helm needs "
                                        "string keys)")
                continue
            if name in first:
                self.problem(line0 + 1, f"duplicate key {'.'.join((*path, name))} (first at line {first[name]}): "
                                        "Helm keeps only the last one; remove one")
                continue
            first[name] = line0 + 1
            child_path = (*path, name)
            if not documented:
                self.annotation(Key(("-", name), None, line0), line0, quiet=True)
                data[name] = self.value(value_node, child_path, documented=False)
                continue
            key = Key(child_path, None, line0 + 1)
            self.annotation(key, line0)
            if isinstance(value_node, yamlread.MappingNode):
                key.value, key.children = self.collection(value_node, child_path, documented=True)
            else:
                key.value = self.value(value_node, child_path, documented=False)
            data[name] = key.value
            keys.append(key)
        return data, keys

    def collection(self, node: yamlread.MappingNode, path: tuple[str, ...],
                   documented: bool) -> tuple[dict[str, Any], list[Key]]:
        if id(node) in self.active:
            self.problem(node.start_mark.line + 1, f"{'.'.join(path)}: an alias refers to a map that contains "
                                                   "it: YAML data must not loop")
            return {}, []
        self.active.add(id(node))
        try:
            return self.mapping(node, path, documented)
        finally:
            self.active.discard(id(node))

    def value(self, node: yamlread.Node, path: tuple[str, ...], documented: bool) -> Any:
        if isinstance(node, yamlread.ScalarNode):
            value = yamlread.scalar(node)
            if node.tag == yamlread.PLAIN and node.value in yamlread.YAML11_BOOLS:
                self.problem(node.start_mark.line + 1,
                             f"{'.'.join(path)}: Helm reads the plain scalar `{node.value}` as a boolean "
                             "(YAML 1.1): write true/false, or quote it to keep a string")
            elif isinstance(value, float) and not math.isfinite(value):
                self.problem(node.start_mark.line + 1,
                             f"{'.'.join(path)}: Helm cannot load `{node.value}` (JSON has no infinity or NaN): "
                             "quote it to keep a string, or write a number")
            return value
        if isinstance(node, yamlread.MappingNode):
            return self.collection(node, path, documented)[0]
        if id(node) in self.active:
            self.problem(node.start_mark.line + 1, f"{'.'.join(path)}: an alias refers to a list that contains "
                                                   "it: YAML data must not loop")
            return []
        self.active.add(id(node))
        try:
            return [self.value(item, (*path, str(i)), documented=False) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def annotation(self, key: Key, line0: int, quiet: bool = False) -> None:
        block: list[int] = []
        i = line0 - 1
        lines = self.lines
        while i >= 0 and lines[i].lstrip().startswith("#"):
            block.append(i)
            i -= 1
        if not block:
            return
        block.reverse()
        if quiet:
            self.used.update(block)
            return
        description: list[str] | None = None
        for i in block:
            text = lines[i].strip()
            if DESCRIPTION.match(text):
                if description is not None:
                    self.problem(i + 1, f"second `# --` description above {key.dotted}: "
                                        "join them into one (continuation lines start with `# `)")
                description = [DESCRIPTION.sub("", text, count=1).strip()]
                self.used.add(i)
            elif SCHEMA.match(text):
                self.used.add(i)
                self.pending.append((key, i, SCHEMA.sub("", text, count=1).strip()))
                if description is not None:
                    description.append("\n")  # a hint line ends the description's paragraph
            elif description is not None and (text == "#" or text.startswith("# ")):
                self.used.add(i)
                description.append(text[2:].rstrip() if text != "#" else "\n")
        if description is not None:
            key.description = _join(description)
            if not key.description:
                self.problem(line0 + 1, f"empty `# --` description above {key.dotted}: say what it does")

    def apply_hints(self) -> None:
        """Parse every `# @schema` line (the same text once) and merge it into its key, in file order."""
        parsed: dict[str, Any] = {}
        for key, i, text in self.pending:
            if text not in parsed:
                parsed[text] = _flow_mapping(text)
            result = parsed[text]
            if isinstance(result, str):
                self.problem(i + 1, f"malformed @schema annotation of {key.dotted}: {result}")
                continue
            key.hints.update(_copy(result))
            if key.hint_line is None:
                key.hint_line = i + 1

    def orphans(self) -> None:
        for i, raw in enumerate(self.lines):
            if i in self.used or "#" not in raw:
                continue
            text = raw.strip()
            if DESCRIPTION.match(text) or SCHEMA.match(text):
                what = "description" if DESCRIPTION.match(text) else "@schema annotation"
                self.problem(i + 1, f"{what} is not directly above a key (no blank line or other text may "
                                    "come between the comment block and its key)")


def _flow_mapping(text: str) -> dict[str, Any] | str:
    """The mapping an annotation holds (YAML 1.1, like Helm), or what is wrong with it."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        parsed = yaml.load(text, Loader=loader) if text else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return f"{problem}; expected a YAML flow mapping such as {{minimum: 1, maximum: 9}}"
    if not isinstance(parsed, dict):
        return f"expected a YAML flow mapping such as {{minimum: 1}}, got {text or 'nothing'}"
    return parsed


def _copy(value: Any) -> Any:
    """A copy of parsed annotation data (lists and maps), so keys with the same annotation share nothing."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if part == "\n":
            text = text.rstrip(" ") + ("\n" if text and not text.endswith("\n") else "")
        elif part:
            text += (" " if text and not text.endswith("\n") else "") + part
    return text.strip()
