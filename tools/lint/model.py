"""What rules look at: the objects of one render, indexed once, with pods and containers unpacked.

Rules never parse YAML or run helm; they get an :class:`Index` (all objects, pod-bearing
workloads, lookups by kind/namespace/name) and walk it.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.manifest import KubeObject

# Where the pod spec lives in each pod-bearing kind.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
REPLICATED_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}
RUN_TO_COMPLETION = {"Job", "CronJob"}


# The one object type of tools/ (tools.manifest); rules know it as Obj.
Obj = KubeObject


@dataclass(frozen=True, slots=True)
class Container:
    """A container of a workload: its dict, JSON path, and whether it is init / keeps running."""

    spec: dict[str, Any]
    path: str
    init: bool
    long_running: bool

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")

    @property
    def security_context(self) -> dict[str, Any]:
        sc = self.spec.get("securityContext")
        return sc if isinstance(sc, dict) else {}


@dataclass(slots=True)
class Workload:
    """A pod-bearing object: the pod spec and labels as the pods will see them."""

    obj: Obj
    pod_spec: dict[str, Any]
    pod_path: str
    pod_labels: dict[str, Any]
    containers: list[Container] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def namespace(self) -> str:
        return self.obj.effective_namespace

    @property
    def labels_path(self) -> str:
        """JSON path of the pod labels (``spec.template.metadata.labels`` for a Deployment)."""
        return "metadata.labels" if self.kind == "Pod" else self.pod_path[: -len(".spec")] + ".metadata.labels"

    @property
    def replicas(self) -> int | None:
        """Declared replicas (1 when a replicated kind omits it, None for other kinds)."""
        if self.kind not in REPLICATED_KINDS:
            return None
        value = (self.obj.obj.get("spec") or {}).get("replicas", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    @property
    def pod_security_context(self) -> dict[str, Any]:
        sc = self.pod_spec.get("securityContext")
        return sc if isinstance(sc, dict) else {}


def _dig(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def workload_of(obj: Obj) -> Workload | None:
    keys = POD_SPEC_PATHS.get(obj.kind)
    if keys is None:
        return None
    spec = _dig(obj.obj, keys)
    if not isinstance(spec, dict):
        return None
    if obj.kind == "Pod":
        labels = obj.labels
    else:
        labels = _dig(obj.obj, keys[:-1] + ("metadata", "labels"))
        labels = labels if isinstance(labels, dict) else {}
    pod_path = ".".join(keys)
    long_running_kind = obj.kind not in RUN_TO_COMPLETION and not (
        obj.kind == "Pod" and spec.get("restartPolicy") in ("Never", "OnFailure")
    )
    containers: list[Container] = []
    for i, c in enumerate(_as_list(spec.get("initContainers"))):
        if isinstance(c, dict):
            sidecar = c.get("restartPolicy") == "Always"
            containers.append(Container(c, f"{pod_path}.initContainers[{i}]", True, sidecar and long_running_kind))
    for i, c in enumerate(_as_list(spec.get("containers"))):
        if isinstance(c, dict):
            containers.append(Container(c, f"{pod_path}.containers[{i}]", False, long_running_kind))
    return Workload(obj, spec, pod_path, labels, containers)


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) against labels; an empty selector matches all."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if str(labels.get(key)) != str(value) or key not in labels:
            return False
    for expr in _as_list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in _as_list(expr.get("values"))]
        present = key in labels
        if op == "In" and not (present and str(labels[key]) in values):
            return False
        if op == "NotIn" and present and str(labels[key]) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def map_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Service-style selector (plain map); callers decide what an empty one means."""
    return all(key in labels and str(labels[key]) == str(value) for key, value in selector.items())


def decode_secret(secret: Obj) -> dict[str, str | None]:
    """A Secret's keys and values (``data`` base64-decoded, ``stringData`` as is; None if undecodable)."""
    out: dict[str, str | None] = {}
    for key, value in (secret.obj.get("data") or {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            out[str(key)] = None
    for key, value in (secret.obj.get("stringData") or {}).items():
        out[str(key)] = None if value is None else str(value)
    return out


class Index:
    """All objects of one lint input, with the lookups the cross-object rules need."""

    def __init__(self, objects: list[Obj], kube_versions: tuple[str, ...] = ()) -> None:
        self.objects = objects
        self.kube_versions = kube_versions
        self.by_kind: dict[str, list[Obj]] = defaultdict(list)
        self._by_kind_ns: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        self._named: dict[tuple[str, str, str], Obj] = {}
        self.workloads: list[Workload] = []
        for o in objects:
            self.by_kind[o.kind].append(o)
            self._by_kind_ns[(o.kind, o.effective_namespace)].append(o)
            self._named[(o.kind, o.effective_namespace, o.name)] = o
            w = workload_of(o)
            if w is not None:
                self.workloads.append(w)
        self._ns_workloads: dict[str, list[Workload]] = defaultdict(list)
        for w in self.workloads:
            if w.kind != "Pod" or not w.obj.metadata.get("ownerReferences"):
                self._ns_workloads[w.namespace].append(w)

    def kind(self, kind: str) -> list[Obj]:
        return self.by_kind.get(kind, [])

    def kind_in(self, kind: str, namespace: str) -> list[Obj]:
        """Objects of ``kind`` in ``namespace``."""
        return self._by_kind_ns.get((kind, namespace), [])

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._named.get((kind, namespace, name))

    def workloads_in(self, namespace: str) -> list[Workload]:
        return self._ns_workloads.get(namespace, [])

    def iter_containers(self) -> Iterator[tuple[Workload, Container]]:
        for w in self.workloads:
            for c in w.containers:
                yield w, c
