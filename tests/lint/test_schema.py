"""The compiled schema validators agree with jsonschema on kubernetes-validate's strict schemas."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.lint.cases import all_cases, case_docs
from tools.lint.schema import KubeSchemas, Unsupported, _Compiler, newest_version, resolve_version


def _parents(errors: list[tuple[str, str]]) -> list[str]:
    """Normalise paths: the compiler writes a[0].b, jsonschema a.0.b; sort for comparison."""
    return sorted(re.sub(r"\[(\d+)\]", r".\1", p) for p, _ in errors)


def _mutations(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Invalid variants of an object: unknown fields, wrong types, missing required fields, nulls."""
    out = [copy.deepcopy(obj) for _ in range(4)]
    out[0]["metadata"]["labelz"] = {"a": "b"}
    out[1]["metadata"]["name"] = 42
    spec = out[2].get("spec")
    if isinstance(spec, dict):
        spec["bogusField"] = True
        for value in spec.values():
            if isinstance(value, dict):
                value["anotherBogus"] = [1]
                break
    out[3]["metadata"]["labels"] = {"x": None, "y": 3}
    return out


def _objects() -> list[dict[str, Any]]:
    """One object per apiVersion/kind of the lint cases (the baseline and every patch)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for case in all_cases():
        for obj in case_docs(case):
            seen.setdefault((obj["apiVersion"], obj["kind"]), obj)
    return list(seen.values())


@pytest.mark.parametrize("version", ["1.29", newest_version()])
def test_compiled_validator_reports_the_same_errors_as_jsonschema(version: str) -> None:
    schemas = KubeSchemas(version)
    checked = 0
    for obj in _objects():
        validate = schemas.validator(obj["apiVersion"], obj["kind"])
        if validate is None:
            continue
        for candidate in [obj, *_mutations(obj)]:
            ours = validate(candidate)
            theirs = list(schemas.jsonschema_errors(candidate))
            assert _parents(ours) == _parents(theirs), (obj["kind"], ours, theirs)
            checked += 1
    assert checked > 40


def test_schema_with_a_keyword_the_compiler_lacks_is_refused_so_jsonschema_is_used() -> None:
    with pytest.raises(Unsupported):
        _Compiler({}).node({"type": "string", "pattern": "^a"})


def test_unsupported_kube_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="schemas for 1.25 to"):
        resolve_version("9.99")
    assert resolve_version("1.29.3") == "1.29"


def test_kind_without_bundled_or_vendored_schema_has_no_validator() -> None:
    assert KubeSchemas("1.29").validator("example.com/v1", "Widget") is None
    assert KubeSchemas("1.29").validator("monitoring.coreos.com/v1", "Alertmanager") is None  # not vendored


def test_vendored_crd_kind_has_a_validator_on_every_version() -> None:
    for version in ("1.25", "1.37"):
        assert KubeSchemas(version).validator("monitoring.coreos.com/v1", "ServiceMonitor") is not None
