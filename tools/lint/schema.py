"""Strict schema validation: kubernetes-validate's schemas for built-in kinds, vendored CRDs (tools.crds) for the rest.

kubernetes_validate.validate() reads and parses the 1 MB definitions file and builds a new
jsonschema validator for every object, which costs milliseconds per object. Here each Kubernetes
version's definitions are read once, and each (apiVersion, kind) is compiled once into a tree of
small Python closures. The bundled schemas use only a handful of JSON Schema keywords (type, enum,
properties, additionalProperties, required, items, $ref, oneOf, and format, which jsonschema does
not assert by default); a schema that uses anything else falls back to a cached jsonschema
validator, so results never depend on the shortcut. tests/lint/test_schema.py checks that both
give the same errors.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import importlib_resources
import jsonschema
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from tools import crds, kube_versions

# (value, path-chain, errors): the path chain is a linked list of (parent, key) built only on error.
Check = Callable[[Any, Any, list[tuple[Any, str]]], None]
Error = tuple[str, str]  # (JSON path, message)

SUPPORTED = {"type", "enum", "properties", "additionalProperties", "required", "items", "$ref", "oneOf"}
IGNORED = {
    "description", "format", "default", "$schema", "$id", "$defs", "x-kubernetes-group-version-kind",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key", "x-kubernetes-map-type", "x-kubernetes-unions",
    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-validations",
}

_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_EXACT: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,), "null": (type(None),),
}


class Unsupported(Exception):
    """The schema uses a keyword the compiler does not implement: use jsonschema instead."""


def schema_root() -> Path:
    return Path(str(importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")))


def supported_versions() -> list[str]:
    """Kubernetes minor versions with bundled schemas, oldest first (``["1.25", ..., "1.37"]``)."""
    return [kv_utils.major_minor(v) for v in kv_utils.all_versions()]


def newest_version() -> str:
    return kube_versions.newest()


def resolve_version(wanted: str) -> str:
    """The bundled schema version for ``wanted`` (the newest one not newer); ValueError if unsupported."""
    text = wanted.removeprefix("v")
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", text):
        raise ValueError(f"--kube-version {wanted!r}: expected MAJOR.MINOR such as 1.29")
    mm = tuple(int(p) for p in text.split(".")[:2])
    versions = supported_versions()
    usable = [v for v in versions if tuple(int(p) for p in v.split(".")) <= mm]
    if not usable or mm > tuple(int(p) for p in versions[-1].split(".")):
        raise ValueError(
            f"--kube-version {wanted}: kubernetes-validate has schemas for {versions[0]} to {versions[-1]}"
        )
    return usable[-1]


_GROUP_RE = re.compile(r"^([^./]*)(?:\.[^/]*)?/")


def schema_file_stem(api_version: str, kind: str) -> str:
    """``apps/v1`` + ``Deployment`` -> ``deployment-apps-v1`` (kubernetes-validate's file naming)."""
    group_version = _GROUP_RE.sub(r"\1-", api_version)
    return f"{kind.lower()}-{group_version}"


def _path_of(chain: Any) -> str:
    keys: list[Any] = []
    while chain is not None:
        chain, key = chain
        keys.append(key)
    return _format_path(reversed(keys))


def _format_path(keys: Any) -> str:
    """``["spec", "ports", 0, "port"]`` -> ``spec.ports[0].port`` (the linter's JSON path spelling)."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class _Compiler:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.compiled: dict[str, Check | None] = {}
        self.pending: dict[str, list[Check | None]] = {}

    def ref(self, ref: str) -> Check | None:
        name = ref.rsplit("/", 1)[-1]
        if name in self.compiled:
            return self.compiled[name]
        if name in self.pending:  # recursive definition: late-bound indirection
            cell = self.pending[name]

            def late(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
                fn = cell[0]
                if fn is not None:
                    fn(v, p, e)
            return late
        if name not in self.defs:
            raise Unsupported(f"unresolvable $ref {ref}")
        cell = [None]
        self.pending[name] = cell
        fn = self.node(self.defs[name])
        cell[0] = fn
        del self.pending[name]
        self.compiled[name] = fn
        return fn

    def node(self, schema: Any) -> Check | None:
        if schema is True or schema == {}:
            return None
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        unknown = set(schema) - SUPPORTED - IGNORED
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        parts: list[Check] = []
        if "$ref" in schema:
            target = self.ref(schema["$ref"])
            if target is not None:
                parts.append(target)
        if "type" in schema:
            parts.append(self.type_check(schema["type"]))
        if "enum" in schema:
            allowed = list(schema["enum"])

            def enum(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
                if v not in allowed or (isinstance(v, bool) and not any(a is v for a in allowed)):
                    e.append((p, f"{v!r} is not one of {allowed!r}"))
            parts.append(enum)
        if "required" in schema:
            required = list(schema["required"])

            def req(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
                if isinstance(v, dict):
                    for key in required:
                        if key not in v:
                            e.append((p, f"required field {key!r} is missing"))
            parts.append(req)
        if "properties" in schema or "additionalProperties" in schema:
            parts.append(self.object_check(schema.get("properties", {}), schema.get("additionalProperties", True)))
        if "items" in schema:
            item = self.node(schema["items"])
            if item is not None:
                def items(v: Any, p: Any, e: list[tuple[Any, str]], item: Check = item) -> None:
                    if isinstance(v, list):
                        for i, x in enumerate(v):
                            item(x, (p, i), e)
                parts.append(items)
        if "oneOf" in schema:
            options = [self.node(s) for s in schema["oneOf"]]

            def one_of(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
                matched = 0
                for opt in options:
                    if opt is None:
                        matched += 1
                        continue
                    sub: list[tuple[Any, str]] = []
                    opt(v, p, sub)
                    matched += not sub
                if matched != 1:
                    e.append((p, f"{v!r} is not valid under exactly one of the allowed types"))
            parts.append(one_of)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        seq = tuple(parts)

        def all_of(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
            for fn in seq:
                fn(v, p, e)
        return all_of

    @staticmethod
    def type_check(types: Any) -> Check:
        names = [types] if isinstance(types, str) else list(types)
        label = ", ".join(names)
        if all(n in _EXACT for n in names):
            exact = tuple(t for n in names for t in _EXACT[n])

            def exact_type(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
                if type(v) not in exact:
                    e.append((p, f"{v!r} is not of type {label}"))
            return exact_type
        preds = [_PY_TYPES[n] for n in names]

        def some_type(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
            for pred in preds:
                if pred(v):
                    return
            e.append((p, f"{v!r} is not of type {label}"))
        return some_type

    def object_check(self, props: dict[str, Any], additional: Any) -> Check:
        compiled = {k: self.node(s) for k, s in props.items()}
        closed = additional is False
        extra = None if additional in (True, False) else self.node(additional)

        def obj(v: Any, p: Any, e: list[tuple[Any, str]]) -> None:
            if type(v) is not dict:
                return
            for key, x in v.items():
                if key in compiled:
                    fn = compiled[key]
                    if fn is not None:
                        fn(x, (p, key), e)
                elif closed:
                    e.append((p, f"unknown field {key!r}"))
                elif extra is not None:
                    extra(x, (p, key), e)
        return obj


class KubeSchemas:
    """The strict schemas of one Kubernetes version, loaded once, with one validator per kind."""

    def __init__(self, version: str) -> None:
        self.version = resolve_version(version)
        self.directory = schema_root() / f"v{self.version}.0-local-strict"
        if not self.directory.is_dir():
            raise ValueError(f"kubernetes-validate has no strict schemas for {self.version}")
        with (self.directory / "_definitions.json").open() as fh:
            self._definitions = json.load(fh)
        self._compiler = _Compiler(self._definitions["$defs"])
        self._validators: dict[tuple[str, str], Callable[[Any], list[Error]] | None] = {}

    def validator(self, api_version: str, kind: str) -> Callable[[Any], list[Error]] | None:
        """A function object -> [(path, message)], or None when no schema is bundled for the kind."""
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._build(api_version, kind)
        return self._validators[key]

    def _build(self, api_version: str, kind: str) -> Callable[[Any], list[Error]] | None:
        schema = self.schema(api_version, kind)
        if schema is None:
            return None
        try:
            check = self._compile_top(schema)
        except Unsupported:
            return self._jsonschema_validator(schema)

        def run(obj: Any) -> list[Error]:
            raw: list[tuple[Any, str]] = []
            if check is not None:
                check(obj, None, raw)
            return [(_path_of(p), m) for p, m in raw]
        return run

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The strict JSON schema of a kind: kubernetes-validate's for built-in kinds, else a vendored CRD's."""
        file = self.directory / f"{schema_file_stem(api_version, kind)}.json"
        if file.is_file():
            with file.open() as fh:
                return json.load(fh)
        return crds.strict_schema(api_version, kind, self._definitions["$defs"])

    def _compile_top(self, schema: dict[str, Any]) -> Check | None:
        top = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
        return self._compiler.node(top)

    def _jsonschema_validator(self, schema: dict[str, Any]) -> Callable[[Any], list[Error]]:
        registry: Registry = Resource.from_contents(schema) @ Registry()
        registry = Resource.from_contents(self._definitions) @ registry
        validator = jsonschema.Draft202012Validator(schema, registry=registry)

        def run(obj: Any) -> list[Error]:
            return [(_format_path(err.absolute_path), err.message) for err in validator.iter_errors(obj)]
        return run

    def jsonschema_errors(self, obj: dict[str, Any]) -> Iterator[Error]:
        """Reference implementation (jsonschema itself), used by tests to check the compiled validators."""
        schema = self.schema(obj["apiVersion"], obj["kind"])
        if schema is None:
            raise ValueError(f"no schema for {obj['apiVersion']} {obj['kind']}")
        yield from self._jsonschema_validator(schema)(obj)


@functools.cache
def schemas_for(version: str) -> KubeSchemas:
    """One KubeSchemas per Kubernetes version for the life of the process."""
    return KubeSchemas(version)
