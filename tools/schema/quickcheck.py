"""A fast "yes" to: do values.yaml's own defaults pass the schema generated from it?

tools.schema checks every chart's defaults against its generated schema (Helm checks them at every install).
Importing jsonschema and walking a large chart with it costs more than the rest of a generation run, and the
answer is nearly always yes: inferred types come from the defaults themselves; only annotations can refuse
one. :func:`valid` walks the schema and the data once and returns True only when it is sure: every keyword on
the way is one it evaluates like jsonschema's Draft7Validator (without format checks, as that validator runs
by default). Anything else (an unknown or rarely used keyword, a remote ``$ref``, a failing value) returns
False, which means "ask jsonschema": the caller then runs the real validator, which also words the errors.
So this module can make a run faster, never more lenient or differently worded.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# Keywords that only annotate (Draft7Validator asserts nothing for them by default).
ANNOTATIONS = frozenset({
    "$comment", "$schema", "contentEncoding", "contentMediaType", "default", "definitions", "description",
    "examples", "format", "readOnly", "title", "writeOnly",
})
REF_PREFIX = "#/definitions/"


class _Unsure(Exception):
    """A keyword or shape this module does not evaluate: let jsonschema decide."""


def valid(schema: dict[str, Any], instance: Any) -> bool:
    """True when ``instance`` surely passes ``schema`` (draft-07); False when it fails or we are not sure."""
    try:
        return _check(schema, schema, instance)
    except (_Unsure, re.error, RecursionError):
        return False


def _check(root: dict[str, Any], schema: Any, x: Any) -> bool:
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise _Unsure
    if "$ref" in schema:  # draft-07: the siblings of $ref are ignored
        return _check(root, _target(root, schema["$ref"]), x)
    for name, arg in schema.items():
        check = _KEYWORDS.get(name)
        if check is None:
            if name in ANNOTATIONS:
                continue
            raise _Unsure
        if not check(root, schema, arg, x):
            return False
    return True


def _target(root: dict[str, Any], ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
        raise _Unsure
    name = ref[len(REF_PREFIX):]
    if "/" in name or "~" in name or "%" in name:
        raise _Unsure
    try:
        return root["definitions"][name]
    except (KeyError, TypeError):
        raise _Unsure from None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_type(x: Any, name: Any) -> bool:
    if name == "string":
        return isinstance(x, str)
    if name == "object":
        return isinstance(x, dict)
    if name == "array":
        return isinstance(x, list)
    if name == "boolean":
        return isinstance(x, bool)
    if name == "null":
        return x is None
    if name == "number":
        return _is_number(x)
    if name == "integer":
        return _is_number(x) and (isinstance(x, int) or x.is_integer())
    raise _Unsure


def _equal(a: Any, b: Any) -> bool:
    """jsonschema's equality: booleans are not numbers, 1 == 1.0, containers compared item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(i, j) for i, j in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return bool(a == b)


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    names = arg if isinstance(arg, list) else [arg]
    return any(_is_type(x, n) for n in names)


def _enum(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, list):
        raise _Unsure
    return any(_equal(x, v) for v in arg)


def _const(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    return _equal(x, arg)


def _bound(compare: Any) -> Any:
    def check(root: Any, schema: Any, arg: Any, x: Any) -> bool:
        if not _is_number(arg):
            raise _Unsure
        return not _is_number(x) or bool(compare(x, arg))
    return check


def _length(compare: Any, kind: type) -> Any:
    def check(root: Any, schema: Any, arg: Any, x: Any) -> bool:
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise _Unsure
        return not isinstance(x, kind) or bool(compare(len(x), arg))
    return check


def _pattern(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, str):
        raise _Unsure
    return not isinstance(x, str) or _regex(arg).search(x) is not None


def _items(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(x, list):
        return True
    if not isinstance(arg, (dict, bool)):
        raise _Unsure  # a list of schemas (tuple validation)
    return all(_check(root, arg, item) for item in x)


def _properties(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, dict):
        raise _Unsure
    if not isinstance(x, dict):
        return True
    return all(_check(root, sub, x[name]) for name, sub in arg.items() if name in x)


def _additional(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if "patternProperties" in schema:
        raise _Unsure
    if not isinstance(x, dict):
        return True
    known = schema.get("properties") or {}
    extra = [k for k in x if k not in known]
    if arg is True or not extra:
        return True
    if arg is False:
        return False
    if not isinstance(arg, dict):
        raise _Unsure
    return all(_check(root, arg, x[k]) for k in extra)


def _required(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, list):
        raise _Unsure
    return not isinstance(x, dict) or all(name in x for name in arg)


def _all_of(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, list):
        raise _Unsure
    return all(_check(root, s, x) for s in arg)


def _any_of(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, list):
        raise _Unsure
    return any(_check(root, s, x) for s in arg)


def _one_of(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    if not isinstance(arg, list):
        raise _Unsure
    return sum(1 for s in arg if _check(root, s, x)) == 1


def _not(root: Any, schema: Any, arg: Any, x: Any) -> bool:
    return not _check(root, arg, x)


_KEYWORDS = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound(lambda x, a: x >= a),
    "maximum": _bound(lambda x, a: x <= a),
    "exclusiveMinimum": _bound(lambda x, a: x > a),
    "exclusiveMaximum": _bound(lambda x, a: x < a),
    "minLength": _length(lambda n, a: n >= a, str),
    "maxLength": _length(lambda n, a: n <= a, str),
    "minItems": _length(lambda n, a: n >= a, list),
    "maxItems": _length(lambda n, a: n <= a, list),
    "minProperties": _length(lambda n, a: n >= a, dict),
    "maxProperties": _length(lambda n, a: n <= a, dict),
    "pattern": _pattern,
    "items": _items,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
}
