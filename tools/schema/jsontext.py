"""``json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)``, byte for byte, several times faster.

With ``indent`` set, the standard library uses its pure-Python encoder, a chain of nested generators that
passes every token up through each level of nesting; on a large chart's schema that is a good part of a
generation run. This writer appends to one list instead. Data it was not written for (keys that are not
strings) goes to json.dumps itself.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

INDENT = "  "


class _Fallback(Exception):
    pass


def dumps(data: Any) -> str:
    out: list[str] = []
    try:
        _write(data, out, "\n")
    except _Fallback:
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    return "".join(out)


def _write(value: Any, out: list[str], newline: str) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + INDENT
        first = True
        for key in sorted(value):  # a TypeError here (mixed key types) is json.dumps's error too
            if not isinstance(key, str):
                raise _Fallback
            out.append(("{" if first else ",") + inner + encode_basestring(key) + ": ")
            first = False
            _write(value[key], out, inner)
        out.append(newline + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = newline + INDENT
        first = True
        for item in value:
            out.append(("[" if first else ",") + inner)
            first = False
            _write(item, out, inner)
        out.append(newline + "]")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float) and math.isfinite(value):
        out.append(float.__repr__(value))
    else:  # NaN, infinities, tuples, other types: json.dumps's own rules
        raise _Fallback
