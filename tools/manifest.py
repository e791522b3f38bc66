"""The one manifest parser and the one object type of tools/.

helm renders (tools.helm), manifest files and stdin (tools.lint) all become :class:`KubeObject` s
through :func:`parse`. Documents are parsed with libyaml (CSafeLoader) when PyYAML has it: on 10,000
objects the pure-Python loader is the slowest part of a lint run. Each object keeps the template it
came from (helm's ``# Source:`` line) and the line where its document starts; ``List`` kinds are
unpacked. Bad input is a :class:`ManifestError` whose ``str()`` is one line naming ``file:line``.

Usage::

    from tools import manifest
    for o in manifest.parse(text, "rendered.yaml"):
        print(o.ref, o.source, o.line)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SOURCE_PREFIX = "# Source: "

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

# PyYAML's constructor is most of a load even with libyaml: helm renders are plain maps, lists, strings, ints and
# booleans, so _build turns the composed (and tag-resolved) nodes into those directly, about 1.7x faster on a
# production render, and hands anything else (a timestamp, a merge key, a custom tag, an unhashable key) to
# PyYAML's own constructor, so the result is always what yaml.safe_load gives (tests/unit/test_manifest.py).
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL, _NULL, _FLOAT = (_TAG + t for t in ("str", "int", "bool", "null", "float"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_SCALARS = yaml.constructor.SafeConstructor()


class _Unusual(Exception):
    """A node _build leaves to PyYAML's constructor."""


def _build(node: yaml.Node) -> Any:
    tag = node.tag
    if type(node) is yaml.ScalarNode:
        if tag == _STR:
            return node.value
        if tag == _INT:
            return _SCALARS.construct_yaml_int(node)
        if tag == _BOOL:
            return _BOOLS[node.value.lower()]
        if tag == _NULL:
            return None
        if tag == _FLOAT:
            return _SCALARS.construct_yaml_float(node)
        raise _Unusual(tag)
    if type(node) is yaml.MappingNode and tag == _MAP:
        out = {}
        for key, value in node.value:
            if key.tag == _MERGE:
                raise _Unusual(key.tag)
            out[_build(key)] = _build(value)
        return out
    if type(node) is yaml.SequenceNode and tag == _SEQ:
        return [_build(item) for item in node.value]
    raise _Unusual(tag)


def load(doc: str) -> Any:
    """One YAML document, exactly as ``yaml.safe_load`` reads it (raises yaml.YAMLError the same way)."""
    loader = _Loader(doc)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None
    try:
        return _build(node)
    except (_Unusual, TypeError, KeyError, RecursionError):
        return yaml.load(doc, Loader=_Loader)


class ManifestError(ValueError):
    """Unreadable manifest input: ``str()`` is one line naming the file and line."""


class KubeObject:
    """One Kubernetes object with where it came from: template, line in the input, render namespace.

    The identifying fields (kind, apiVersion, name, namespace) are read once here, so rules and
    tools that look at thousands of objects do not dig through the dict each time. ``obj`` is the
    parsed mapping; ``o["spec"]`` and ``o.get("spec")`` read it.
    """

    __slots__ = (
        "api_version",
        "default_namespace",
        "effective_namespace",
        "kind",
        "line",
        "metadata",
        "name",
        "namespace",
        "obj",
        "source",
    )

    def __init__(self, obj: dict[str, Any], source: str | None = None, line: int | None = None,
                 default_namespace: str = "default") -> None:
        self.obj = obj
        self.source = source
        self.line = line
        self.default_namespace = default_namespace
        self.kind = str(obj.get("kind") or "")
        self.api_version = str(obj.get("apiVersion") or "")
        meta = obj.get("metadata")
        self.metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
        self.name = str(self.metadata.get("name") or "")
        ns = self.metadata.get("namespace")
        self.namespace: str | None = str(ns) if ns else None
        # The namespace the object lands in (the render namespace when metadata has none).
        self.effective_namespace: str = self.namespace or default_namespace

    @property
    def annotations(self) -> dict[str, Any]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def labels(self) -> dict[str, Any]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    @property
    def ref(self) -> str:
        """``Kind/namespace/name`` (namespace omitted when metadata has none)."""
        ns = self.namespace
        return f"{self.kind}/{ns}/{self.name}" if ns else f"{self.kind}/{self.name}"

    def __getitem__(self, key: str) -> Any:
        return self.obj[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.obj.get(key, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KubeObject):
            return NotImplemented
        return self.source == other.source and self.obj == other.obj

    def __hash__(self) -> int:
        return hash((self.kind, self.namespace, self.name, self.source))

    def __repr__(self) -> str:
        return f"KubeObject({self.ref}, source={self.source!r}, line={self.line!r})"


def _documents(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each YAML document of a multi-document stream."""
    start, current = 1, []
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r"):
            if current:
                yield start, "\n".join(current)
            start, current = number + 1, []
        else:
            current.append(line)
    if current:
        yield start, "\n".join(current)


def _source_of(doc: str) -> str | None:
    idx = doc.find(SOURCE_PREFIX)
    while idx != -1 and idx != 0 and doc[idx - 1] != "\n":
        idx = doc.find(SOURCE_PREFIX, idx + 1)
    if idx == -1:
        return None
    return doc[idx + len(SOURCE_PREFIX):].split("\n", 1)[0].strip()


def parse(text: str, name: str = "input", namespace: str = "default") -> list[KubeObject]:
    """Objects of a multi-document manifest (List kinds unpacked); ManifestError naming ``name:line``."""
    objects: list[KubeObject] = []
    for line, doc in _documents(text):
        source = _source_of(doc)
        try:
            data = load(doc)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = line + mark.line if mark is not None else line
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ManifestError(f"{name}:{at}: not valid YAML: {problem}") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            where = f" (template {source})" if source else ""
            raise ManifestError(f"{name}:{line}: document is a {type(data).__name__}, not a Kubernetes object{where}")
        kind = str(data.get("kind") or "")
        if kind.endswith("List") and isinstance(data.get("items"), list):
            objects.extend(KubeObject(item, source, line, namespace) for item in data["items"] if isinstance(item, dict))
        else:
            objects.append(KubeObject(data, source, line, namespace))
    return objects


def read(path: str | Path, stdin_text: str | None = None, namespace: str = "default") -> list[KubeObject]:
    """Objects of a manifest file, or of ``stdin_text`` when ``path`` is ``-``."""
    if str(path) == "-":
        return parse(stdin_text or "", "stdin", namespace)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ManifestError(f"{path}: cannot read: {reason}") from None
    return parse(text, str(path), namespace)
