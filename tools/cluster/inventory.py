"""What a render of charts/nova contains that the cluster verbs need: workloads grouped in deploy order
(Redis, then PostgreSQL with etcd first, then the services), their namespaces, selectors and containers,
the Services to port-forward, and where the Redis password and the Patroni role label live.

It reads rendered objects only (tools.helm), so the production profile's namespaces come out right.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tools.helm import RenderedObject

PHASES = ("redis", "postgresql", "services")
PHASE_TITLES = {"redis": "Redis + Sentinel", "postgresql": "PostgreSQL (etcd + Patroni)", "services": "services"}
DEFAULT_ROLE_LABEL = "nova-postgres/role"
DEFAULT_MASTER_SET = "nova"
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class Workload:
    component: str  # the name without the "<release>-" prefix: redis, postgres-etcd, user-service, ...
    phase: str  # one of PHASES
    kind: str  # StatefulSet or Deployment
    name: str
    namespace: str
    replicas: int
    selector: dict[str, str] = field(hash=False)
    containers: tuple[str, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def selector_arg(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))

    def container_env_names(self, container: str) -> set[str]:
        return {e.get("name", "") for c, e in self.env() if c == container}

    def container_with_port(self, port_name: str, port: int) -> str | None:
        for c in self.spec.get("template", {}).get("spec", {}).get("containers", []):
            for p in c.get("ports") or []:
                if p.get("name") == port_name or p.get("containerPort") == port:
                    return c.get("name")
        return None

    def env(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """(container name, env entry) for every env entry of every container."""
        pod = self.spec.get("template", {}).get("spec", {})
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            for e in c.get("env") or []:
                yield c.get("name", ""), e


@dataclass(frozen=True)
class ServicePort:
    name: str
    namespace: str
    port: int
    port_name: str
    phase: str


@dataclass(frozen=True)
class Inventory:
    release: str
    release_namespace: str
    workloads: tuple[Workload, ...]
    services: tuple[ServicePort, ...]
    namespaces: tuple[str, ...]  # every namespace an object goes to, release namespace first
    rendered_namespaces: tuple[str, ...]  # namespaces the chart itself creates (kind Namespace)
    master_set: str = DEFAULT_MASTER_SET
    role_label: str = DEFAULT_ROLE_LABEL

    def phase(self, phase: str) -> list[Workload]:
        return [w for w in self.workloads if w.phase == phase]

    def components(self) -> list[str]:
        return [w.component for w in self.workloads]

    def find(self, component: str) -> list[Workload]:
        return [w for w in self.workloads if w.component == component or w.phase == component]

    @property
    def redis(self) -> Workload | None:
        return next((w for w in self.phase("redis") if w.kind == "StatefulSet"), None)

    @property
    def postgres(self) -> Workload | None:
        return next((w for w in self.phase("postgresql") if w.kind == "StatefulSet" and "etcd" not in w.component), None)

    def service(self, suffix: str, phase: str) -> ServicePort | None:
        return next((s for s in self.services if s.phase == phase and s.name.endswith(suffix)), None)

    def redis_password_secret(self) -> tuple[str, str] | None:
        """(Secret name, key) of the Redis password, from the redis pods' env (works with existingSecret too)."""
        w = self.redis
        if w is None:
            return None
        for _, e in w.env():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("key") == "redis-password" and ref.get("name"):
                return ref["name"], "redis-password"
        for vol in w.spec.get("template", {}).get("spec", {}).get("volumes") or []:
            secret = vol.get("secret") or {}
            if secret.get("secretName") and (not secret.get("items") or any(
                    i.get("key") == "redis-password" for i in secret["items"])):
                return secret["secretName"], "redis-password"
        return None


def _is_hook(o: RenderedObject) -> bool:
    return "helm.sh/hook" in ((o.obj.get("metadata") or {}).get("annotations") or {})


def _phase(o: RenderedObject) -> str:
    labels = (o.obj.get("metadata") or {}).get("labels") or {}
    chart = str(labels.get("helm.sh/chart", ""))
    source = o.source or ""
    # The umbrella's aliases (redis, postgres) become the subcharts' .Chart.Name, so both spellings count.
    if chart.startswith(("nova-redis-", "redis-")) or "/charts/redis/" in source or "/charts/nova-redis/" in source:
        return "redis"
    if (chart.startswith(("nova-postgres-", "postgres-")) or "/charts/postgres/" in source
            or "/charts/nova-postgres/" in source):
        return "postgresql"
    return "services"


def _component(name: str, release: str) -> str:
    return name[len(release) + 1:] if name.startswith(release + "-") else name


def _decoded_values(o: RenderedObject) -> dict[str, str]:
    out = {k: str(v) for k, v in (o.obj.get("data") or {}).items()} if o.kind == "ConfigMap" else {}
    if o.kind == "Secret":
        for k, v in (o.obj.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(str(v)).decode()
            except (ValueError, UnicodeDecodeError):
                continue
        out.update({k: str(v) for k, v in (o.obj.get("stringData") or {}).items()})
    return out


def build(objects: Iterable[RenderedObject], release: str, release_namespace: str) -> Inventory:
    objects = [o for o in objects if not _is_hook(o)]
    workloads: list[Workload] = []
    services: list[ServicePort] = []
    namespaces: list[str] = [release_namespace]
    rendered_ns: list[str] = []
    master_set, role_label = DEFAULT_MASTER_SET, DEFAULT_ROLE_LABEL
    # A Deployment scaled by an HPA renders without replicas: its floor is the HPA's minReplicas.
    hpa_min = {((o.namespace or release_namespace), (o.obj.get("spec") or {}).get("scaleTargetRef", {}).get("name")):
               int((o.obj.get("spec") or {}).get("minReplicas", 1))
               for o in objects if o.kind == "HorizontalPodAutoscaler"}
    for o in objects:
        ns = o.namespace or release_namespace
        if o.kind == "Namespace":
            rendered_ns.append(o.name)
            continue
        if ns not in namespaces:
            namespaces.append(ns)
        if o.kind in ("StatefulSet", "Deployment"):
            spec = o.obj.get("spec") or {}
            pod = spec.get("template", {}).get("spec", {})
            workloads.append(Workload(
                component=_component(o.name, release), phase=_phase(o), kind=o.kind, name=o.name, namespace=ns,
                replicas=int(spec["replicas"]) if "replicas" in spec else hpa_min.get((ns, o.name), 1),
                selector=dict((spec.get("selector") or {}).get("matchLabels") or {}),
                containers=tuple(c.get("name", "") for c in pod.get("containers") or []), spec=spec,
            ))
        elif o.kind == "Service":
            spec = o.obj.get("spec") or {}
            if spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName":
                continue
            for p in spec.get("ports") or []:
                services.append(ServicePort(o.name, ns, int(p.get("port", 0)), str(p.get("name", "")), _phase(o)))
        elif o.kind in ("ConfigMap", "Secret"):
            values = _decoded_values(o)
            if values.get("REDIS_SENTINEL_MASTER"):
                master_set = values["REDIS_SENTINEL_MASTER"]
            for text in values.values():
                m = re.search(r"^\s*sentinel monitor (\S+) ", text, re.MULTILINE)
                if m and _phase(o) == "redis":
                    master_set = m.group(1)
    for w in workloads:
        if w.phase == "redis":
            for _, e in w.env():
                if e.get("name") == "SENTINEL_MASTER_SET" and e.get("value"):
                    master_set = str(e["value"])
        if w.phase == "postgresql":
            for _, e in w.env():
                if e.get("name") == "NOVA_ROLE_LABEL" and e.get("value"):
                    role_label = str(e["value"])
    order = {p: i for i, p in enumerate(PHASES)}
    # Inside PostgreSQL, etcd (the DCS) first; inside a phase, StatefulSets before Deployments.
    workloads.sort(key=lambda w: (order[w.phase], "etcd" not in w.component, w.kind != "StatefulSet", w.name))
    return Inventory(release, release_namespace, tuple(workloads), tuple(services), tuple(namespaces),
                     tuple(rendered_ns), master_set, role_label)
