"""YAML read fast and the way Helm reads it: libyaml composes nodes (with their line marks), scalars are
resolved here with the rules of Helm's YAML library (go-yaml v2, YAML 1.1 flavoured).

libyaml (PyYAML's C parser) only builds the node tree; every plain scalar gets a placeholder tag, and
:func:`scalar` turns it into Python data. That is what makes reading a large values.yaml cheap (a round-trip
parser in pure Python spends most of its time scanning comments), and it lets us resolve like Helm:

* ``~``, ``null``, ``Null``, ``NULL`` and nothing are null; ``true``/``false`` (three spellings each) booleans;
* ``y``, ``yes``, ``on``, ``n``, ``no``, ``off`` (any of their case spellings) are booleans for Helm too:
  :data:`YAML11_BOOLS` lets the caller refuse them, since a reader would take them for strings;
* integers as Go's ``strconv.ParseInt(s, 0, 64)`` after removing ``_``: decimal, ``0x``, ``0o``, ``0b``,
  and a leading ``0`` is octal; floats as go-yaml's ``yamlStyleFloat`` (``1e3`` is a float, ``.5`` too);
* timestamps stay the strings they were written as (go-yaml v2 decodes them so into Helm's values): a
  date never reads as a number, so nothing needs to recognise one.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

try:  # libyaml; the pure-Python parser gives the same nodes, only slower
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = None

YAMLError = yaml.YAMLError
PLAIN = "?"  # the tag libyaml leaves on a plain (unquoted, untagged) scalar: resolved by scalar()
CORE = "tag:yaml.org,2002:"
MERGE = "<<"
YAML11_BOOLS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
)
_NULLS = frozenset(["", "~", "null", "Null", "NULL"])
_TRUE = frozenset(["true", "True", "TRUE"])
_FALSE = frozenset(["false", "False", "FALSE"])
_SPECIAL = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf, "+.inf": math.inf, "+.Inf": math.inf,
            "+.INF": math.inf, "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
            ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}
_NUMERIC_START = frozenset("+-.0123456789")
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


class _Resolver(BaseResolver):
    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return PLAIN if implicit[0] else CORE + "str"
        return CORE + ("seq" if kind is SequenceNode else "map")


if _Parser is not None:
    class _Composer(_Parser, _Resolver):  # type: ignore[misc, valid-type]
        def __init__(self, text: str):
            _Parser.__init__(self, text)
            _Resolver.__init__(self)
else:  # pragma: no cover
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Composer(Reader, Scanner, Parser, Composer, _Resolver):  # type: ignore[no-redef]
        def __init__(self, text: str):
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Resolver.__init__(self)


def compose(text: str) -> Node | None:
    """The node tree of a one-document YAML text (None when empty); raises yaml.YAMLError."""
    composer = _Composer(text)
    try:
        return composer.get_single_node()
    finally:
        composer.dispose()


def error_line(exc: yaml.YAMLError) -> int | None:
    """1-based line of a parse error, when it has one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def error_text(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = " ".join(str(p) for p in parts if p)
    return text or str(exc).splitlines()[0]


def scalar(node: ScalarNode) -> Any:
    """The value Helm reads for a scalar node."""
    value = node.value
    tag = node.tag
    if tag == PLAIN:
        return resolve_plain(value)
    if tag == CORE + "str" or not tag.startswith(CORE):
        return value
    kind = tag[len(CORE):]
    resolved = resolve_plain(value)
    if kind == "null" and resolved is None:
        return None
    if kind == "bool" and isinstance(resolved, bool):
        return resolved
    if kind == "int" and isinstance(resolved, int) and not isinstance(resolved, bool):
        return resolved
    if kind == "float" and isinstance(resolved, (int, float)) and not isinstance(resolved, bool):
        return float(resolved)
    return value  # !!str, !!binary, !!timestamp, or a tag that does not fit its value: the text


def resolve_plain(value: str) -> Any:
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value in YAML11_BOOLS:
        return value.lower() in ("y", "yes", "on")
    if value[0] not in _NUMERIC_START:
        return value
    if value in _SPECIAL:
        return _SPECIAL[value]
    if value[0] == ".":
        return float(value) if _GO_FLOAT.fullmatch(value) else value
    digits = value.replace("_", "")
    if _GO_INT.fullmatch(digits):
        number = _go_int(digits)
        if -(1 << 63) <= number < (1 << 64):
            return number
    if _GO_FLOAT.fullmatch(digits):
        return float(digits)
    return value


def _go_int(text: str) -> int:
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-")
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        return sign * int(body[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
    if len(body) > 1 and body[0] == "0":
        return sign * int(body[1:], 8)
    return sign * int(body)


def plain(node: Node | None) -> Any:
    """Plain Python data of a node tree (merge keys applied; for small files such as Chart.yaml)."""
    if node is None:
        return None
    if isinstance(node, ScalarNode):
        return scalar(node)
    if isinstance(node, SequenceNode):
        return [plain(item) for item in node.value]
    return {_key(k): plain(v) for k, v in pairs(node)}


def _key(node: Node) -> Any:
    return scalar(node) if isinstance(node, ScalarNode) else plain(node)


def is_merge(key: Node) -> bool:
    return isinstance(key, ScalarNode) and key.tag == PLAIN and key.value == MERGE


def pairs(node: MappingNode) -> list[tuple[Node, Node]]:
    """The (key, value) nodes of a mapping with ``<<: *anchor`` merges applied: the mapping's own keys first, in
    order, then the merged keys it does not set itself (of several merged mappings, the first one wins)."""
    merged = [v for k, v in node.value if k.tag == PLAIN and k.value == MERGE]  # is_merge(k), inlined: hot
    if not merged:
        return node.value
    own = [(k, v) for k, v in node.value if not is_merge(k)]
    seen = {k.value for k, _ in own if isinstance(k, ScalarNode)}
    out = list(own)
    for source in merged:
        for mapping in (source.value if isinstance(source, SequenceNode) else [source]):
            if not isinstance(mapping, MappingNode):
                continue
            for k, v in pairs(mapping):
                name = k.value if isinstance(k, ScalarNode) else None
                if name not in seen:
                    seen.add(name)
                    out.append((k, v))
    return out
