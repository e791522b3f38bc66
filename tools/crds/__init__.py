"""Strict JSON schemas for the custom resources the charts render, from vendored, pinned upstream CRDs.

kubernetes-validate ships schemas for built-in kinds only. The charts also render (or document) custom
resources: Prometheus Operator's ServiceMonitor/PodMonitor/PrometheusRule, Gateway API's HTTPRoute/Gateway,
cert-manager's Certificate/Issuer, Strimzi's KafkaTopic/KafkaUser, Argo CD's Application and Flux's HelmRelease.
Their official CustomResourceDefinitions are vendored byte for byte under ``vendor/``; ``sources.json`` pins
each file to an upstream tag, commit and sha256 (tests/unit/test_crds.py checks the bytes, README.md says how to
update). The CRD's ``openAPIV3Schema`` for the requested version becomes a JSON Schema (2020-12) the same way
kubernetes-validate's ``-strict`` schemas are made from the built-in OpenAPI:

- every object schema that lists ``properties`` and says nothing about other keys is closed
  (``additionalProperties: false``), unless it carries ``x-kubernetes-preserve-unknown-fields``;
- OpenAPI 3.0 spellings become JSON Schema: ``nullable`` adds ``null`` to the type, boolean
  ``exclusiveMinimum``/``exclusiveMaximum`` become numbers, ``x-kubernetes-int-or-string`` without an ``anyOf``
  allows integer and string;
- ``apiVersion`` and ``kind`` must be exactly the served ones, and ``metadata`` is the built-in ObjectMeta of the
  Kubernetes version being checked (its definitions are copied in, so the schema is self-contained).

CEL rules (``x-kubernetes-validations``) are not evaluated: an API server would. Nothing here reads the network.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

VENDOR = Path(__file__).parent / "vendor"
SOURCES = Path(__file__).parent / "sources.json"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def sources() -> list[dict[str, str]]:
    """The pins: file, repo, tag, commit, path, url, sha256 for every vendored CRD."""
    return json.loads(SOURCES.read_text())


@functools.cache
def _pins() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> pin, for every served version the pins list (no CRD file is read)."""
    return {(f"{pin['group']}/{version}", pin["kind"]): pin for pin in sources() for version in pin["versions"]}


@functools.cache
def _load(file: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version in one vendored CRD file."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with (VENDOR / file).open() as fh:
        for doc in yaml.load_all(fh, Loader=_Loader):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if version.get("served", True) and schema is not None:
                    out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out


def groups() -> set[str]:
    """API groups that have a vendored schema (``monitoring.coreos.com``, ``gateway.networking.k8s.io``, ...)."""
    return {pin["group"] for pin in sources()}


def known(api_version: str, kind: str) -> bool:
    return (api_version, kind) in _pins()


def source_of(api_version: str, kind: str) -> str | None:
    """The upstream a kind's schema comes from, for messages: ``cert-manager/cert-manager v1.21.1``; or None."""
    pin = _pins().get((api_version, kind))
    return f"{pin['repo']} {pin['tag']}" if pin else None


def strict_schema(api_version: str, kind: str, k8s_defs: dict[str, Any]) -> dict[str, Any] | None:
    """The strict JSON Schema for one custom resource kind, with ObjectMeta from ``k8s_defs``; None if unknown."""
    pin = _pins().get((api_version, kind))
    schema = _load(pin["file"]).get((api_version, kind)) if pin else None
    if schema is None:
        return None
    body = _strict(schema)
    props = body.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "enum": [api_version]}
    props["kind"] = {"type": "string", "enum": [kind]}
    props["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
    body["required"] = sorted(set(body.get("required", [])) | {"apiVersion", "kind"})
    body["additionalProperties"] = False
    body["$defs"] = _closure(OBJECT_META, k8s_defs)
    body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    body["$id"] = f"urn:nova:crd:{api_version}:{kind}"
    return body


def _closure(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    """The named definition and every definition it references, transitively."""
    out: dict[str, Any] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in out:
            continue
        out[current] = defs[current]
        todo.extend(_refs(defs[current]))
    return out


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            else:
                found.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_refs(item))
    return found


def _strict(node: Any) -> Any:
    """Rewrite one OpenAPI 3.0 structural schema node (and its children) into strict JSON Schema."""
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) if k not in ("enum", "default", "example", "required") else v for k, v in node.items()}
    if out.pop("nullable", False) and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool) and out.pop(bound) and limit in out:
            out[bound] = out.pop(limit)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["type"] = ["integer", "string"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out
