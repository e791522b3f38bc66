"""The fast paths of tools.schema give the answers of the slow ones they replace.

* values.yaml is read with libyaml and scalars resolved here: the data must be what Helm itself reads
  (rendered through real helm 4 and helm 3, `toJson .Values`);
* the defaults self-check answers "valid" without jsonschema only when jsonschema agrees;
* the schema text is json.dumps(indent=2, sort_keys=True) byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import helm_path
from tests.schema.conftest import make_chart
from tools import charts as chart_files
from tools import helm
from tools.schema import generate, jsontext, quickcheck, values

SCALARS = """\
exp: 1e3
expSigned: 1.5E+2
octal: 010
octalPrefix: 0o17
hex: 0x1F
binary: 0b101
underscores: 1_000
negativeHex: -0x10
plus: +12
leadingDot: .5
notOctal: 08
big: 99999999999999999999
quotedNumber: "010"
taggedString: !!str 12
taggedInt: !!int "7"
date: 2024-01-01
datetime: 2001-12-14t21:59:43.10-05:00
sexagesimal: 1:20
version: 1.5.0
quantity: 500m
words: plain text
empty: ""
flag: true
Capital: True
list: [1, "2", 3.5, false]
nested: {a: {b: 0x10}}
"""
TEMPLATE = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seen\ndata:\n"
            "  values: {{ toJson .Values | quote }}\n")
REAL = [c.name for c in chart_files.discover()]


def _helm_values(chart: Path, major: int) -> dict[str, Any]:
    binary = helm_path(major)  # a missing helm is an error, as in every other helm test
    (configmap,) = [d for d in yaml.safe_load_all(helm.render_text(chart, helm=binary)) if d]
    return json.loads(configmap["data"]["values"])


def _same(ours: Any, helms: Any) -> bool:
    """Equal as JSON data (Helm's numbers are float64: 1000 and 1000.0 are the same value)."""
    if isinstance(ours, dict):
        return isinstance(helms, dict) and ours.keys() == helms.keys() and all(_same(ours[k], helms[k]) for k in ours)
    if isinstance(ours, list):
        return isinstance(helms, list) and len(ours) == len(helms) and all(map(_same, ours, helms))
    if isinstance(ours, bool) or isinstance(helms, bool):
        return type(ours) is type(helms) and ours == helms
    if isinstance(ours, (int, float)) and isinstance(helms, (int, float)):
        return math.isclose(ours, helms)
    return type(ours) is type(helms) and ours == helms


@pytest.mark.helm3
def test_values_are_read_as_helm_reads_them(tmp_path, helm_major):
    chart = make_chart(tmp_path, "scalars", SCALARS, {"cm.yaml": TEMPLATE})
    ours = values.load(chart / "values.yaml")
    assert ours.problems == []
    seen = _helm_values(chart, helm_major)
    assert ours.data.keys() == seen.keys()
    for key, value in ours.data.items():
        assert _same(value, seen[key]), f"{key}: we read {value!r}, helm {helm_major} reads {seen[key]!r}"
    assert ours.data["octal"] == 8 and ours.data["exp"] == 1000 and ours.data["date"] == "2024-01-01"


@pytest.mark.parametrize("text,problem", [
    ("# -- A.\na: 1\n# -- A again.\na: 2\n", ":4: duplicate key a (first at line 2)"),
    ("# -- A.\na: &x\n  # -- B.\n  b: [*x]\n", "an alias refers to a map that contains it"),
    ("# -- A.\na: .inf\n", ":2: a: Helm cannot load `.inf`"),
    ("# -- A.\n1: x\n", ":2: key 1 under the top level is not a string"),
])
def test_values_helm_would_read_differently_or_not_at_all_are_errors_with_the_line(tmp_path, run, text,
                                                                                   problem):
    result = run(make_chart(tmp_path, "bad", text))
    assert result.code == 2 and "Traceback" not in result.err
    assert problem in result.err, result.err


def test_merged_keys_come_after_the_mappings_own_keys_and_do_not_override_them(tmp_path):
    file = tmp_path / "values.yaml"
    file.write_text("base: &b\n  port: 1\n  name: base\nsvc:\n  a: 0\n  <<: *b\n  name: own\n")
    loaded = values.load(file)
    assert list(loaded.data["svc"].items()) == [("a", 0), ("name", "own"), ("port", 1)]
    assert [k.line for k in loaded.find(("svc",)).children] == [5, 7, 2]


# (schema, instance, jsonschema says valid, the fast check answers valid on its own)
QUICK_CASES = [
    ({"type": "integer", "minimum": 1}, 3, True, True),
    ({"type": "integer", "minimum": 1}, 0, False, False),
    ({"type": "integer"}, 3.0, True, True),
    ({"type": "integer"}, True, False, False),
    ({"type": "number", "maximum": 1}, 0.5, True, True),
    ({"exclusiveMaximum": 1}, 1, False, False),
    ({"enum": [1, 2]}, True, False, False),
    ({"enum": [True]}, 1, False, False),
    ({"enum": ["a", None]}, None, True, True),
    ({"const": {"a": [1]}}, {"a": [1.0]}, True, True),
    ({"type": "string", "pattern": "^[0-9]+m$"}, "500m", True, True),
    ({"type": "string", "pattern": "^[0-9]+m$"}, "500mm", False, False),
    ({"pattern": "^x"}, 5, True, True),
    ({"minLength": 2, "maxLength": 3}, "abcd", False, False),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": 1},
     False, False),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
     {"a": "x", "b": 1}, True, True),
    ({"type": "object", "required": ["a"]}, {}, False, False),
    ({"type": "array", "items": {"type": "string"}, "minItems": 1}, ["a"], True, True),
    ({"items": [{"type": "string"}]}, [1], False, False),  # tuple items: left to jsonschema
    ({"allOf": [{"$ref": "#/definitions/q"}], "default": "1"}, "1", True, True),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True, True),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1, False, False),
    ({"not": {"type": "string"}}, 1, True, True),
    ({"if": {"type": "string"}, "then": {"minLength": 9}}, "short", False, False),  # unknown keyword: unsure
    ({"uniqueItems": True}, [1, 2], True, False),  # a keyword it does not evaluate: unsure, not valid
    ({"$ref": "https://example.org/x.json"}, 1, None, False),  # remote refs: never sure
]


@pytest.mark.parametrize("schema,instance,valid,fast", QUICK_CASES)
def test_the_fast_defaults_check_is_sure_only_when_jsonschema_agrees(schema, instance, valid, fast):
    root = {**schema, "definitions": {"q": {"type": "string", "pattern": "^[0-9]+$"}}}
    assert quickcheck.valid(root, instance) is fast
    if valid is not None:
        assert jsonschema.Draft7Validator(root).is_valid(instance) is valid


@pytest.mark.parametrize("name", REAL)
def test_the_real_charts_defaults_take_the_fast_path_and_jsonschema_agrees(name):
    built = generate.Session().built(helm.CHARTS_DIR / name)
    assert quickcheck.valid(built.schema, built.values.data)
    assert jsonschema.Draft7Validator(built.schema).is_valid(built.values.data)


@pytest.mark.parametrize("name", REAL)
def test_schema_text_is_json_dumps_byte_for_byte(name):
    schema = generate.Session().built(helm.CHARTS_DIR / name).schema
    assert jsontext.dumps(schema) == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize("data", [
    {"ü": "naïve \"quoted\" \\ \n\t\u2028", "b": [], "a": {}, "n": [None, True, False, 0, -1, 1.5, 1e100]},
    {"x": [[{"y": [1]}]], "empty": ""},
    {1: "int key"},  # not written by tools.schema: json.dumps's own rules
    {"nan": float("nan")},
])
def test_json_writer_matches_json_dumps(data):
    assert jsontext.dumps(data) == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
