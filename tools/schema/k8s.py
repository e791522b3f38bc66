"""Kubernetes definitions bundled into a chart's schema, from the JSON schemas kubernetes-validate ships.

kubernetes-validate keeps one ``_definitions.json`` per Kubernetes version under
``kubernetes_validate/kubernetes-json-schema/v<version>-local-strict/`` (``$defs``, JSON Schema 2020-12,
refs ``#/$defs/<name>``, ``additionalProperties: false`` on every object). We read that file directly
(importing kubernetes_validate itself would pull jsonschema and more), copy the named definitions and every
definition they reference, transitively, and rewrite the refs to draft-07's ``#/definitions/<name>``.
The keywords those definitions use (type, properties, items, additionalProperties, required, enum, format,
oneOf, $ref, description) mean the same in draft-07. ``x-kubernetes-*`` vendor keys are dropped.
One definition is bundled stricter: ``Quantity`` (any string or number there) is the Kubernetes quantity
grammar, never negative (tools/schema/quantity.py), so every requests/limits/sizeLimit/storage value typed by a
Kubernetes definition is checked at ``helm install``.

This module is imported only when a values.yaml uses a ``k8s`` annotation, so runs without one stay cheap.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

from tools import kube_versions
from tools.schema import quantity

# The Kubernetes version whose API definitions are bundled (pinned in tools/kube_versions.py, with the
# charts' minimum). Changing it changes every generated schema (run `make schema`).
K8S_VERSION = kube_versions.full(kube_versions.SCHEMA)
REF_PREFIX = "#/$defs/"
OUR_PREFIX = "#/definitions/"


class UnknownDefinition(LookupError):
    """A ``k8s`` annotation names a definition that the pinned Kubernetes version does not have."""

    def __init__(self, name: str, version: str, suggestions: list[str]):
        self.name, self.version, self.suggestions = name, version, suggestions
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else \
            " (names look like io.k8s.api.core.v1.ResourceRequirements)"
        super().__init__(f"unknown Kubernetes definition {name!r} for Kubernetes {version}{hint}")


def schema_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("kubernetes-validate is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@functools.cache
def definitions(version: str = K8S_VERSION) -> dict[str, Any]:
    path = schema_dir() / f"v{version}-local-strict" / "_definitions.json"
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)["$defs"]
    except FileNotFoundError:
        have = sorted(p.name for p in schema_dir().glob("v*-local-strict"))
        raise FileNotFoundError(f"kubernetes-validate has no schemas for Kubernetes {version} "
                                f"(it has {', '.join(have)})") from None


def check(name: str, version: str = K8S_VERSION) -> None:
    """Raise UnknownDefinition when ``name`` is not a definition of ``version``."""
    defs = definitions(version)
    if name not in defs:
        short = {n.rsplit(".", 1)[-1]: n for n in defs}
        close = difflib.get_close_matches(name, list(defs), n=2, cutoff=0.8)
        if not close:
            close = [short[n] for n in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(short), n=2)]
        raise UnknownDefinition(name, version, close)


def is_array(name: str, version: str = K8S_VERSION) -> bool:
    t = definitions(version)[name].get("type")
    return t == "array" or (isinstance(t, list) and "array" in t and "object" not in t)


def bundle(names: set[str], version: str = K8S_VERSION) -> dict[str, Any]:
    """The named definitions and everything they reference, refs rewritten for draft-07."""
    defs = definitions(version)
    out: dict[str, Any] = {}
    todo = sorted(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        check(name, version)
        refs: set[str] = set()
        out[name] = _STRICTER[name]() if name in _STRICTER else _rewrite(defs[name], refs)
        todo.extend(sorted(refs - out.keys()))
    return out


# Definitions bundled stricter than kubernetes-validate's, where its schema accepts what the API server refuses.
_STRICTER = {quantity.NAME: quantity.definition}


def _rewrite(node: Any, refs: set[str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key.startswith("x-kubernetes-"):
                continue
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                target = value[len(REF_PREFIX):]
                refs.add(target)
                result[key] = OUR_PREFIX + target
            elif key in ("properties", "patternProperties", "definitions", "$defs"):
                result[key] = {k: _rewrite(v, refs) for k, v in value.items()}
            else:
                result[key] = _rewrite(value, refs)
        return result
    if isinstance(node, list):
        return [_rewrite(v, refs) for v in node]
    return node
