"""What a render of charts/nova contains that the cluster verbs need: workloads grouped in deploy order
(Redis, then PostgreSQL with etcd first, then the services), their namespaces, selectors and containers,
the Services to port-forward, and where the Redis password and the Patroni role label live.

It reads rendered objects only (tools.helm), so the production profile's namespaces come out right.
Passwords are located, never read: ``SecretRef`` names the Secret and key a container's env takes (with the
documented fallback key when the reference is optional), and tools.cluster reads it into a step's stdin.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from tools.manifest import KubeObject

PHASES = ("redis", "postgresql", "services")
PHASE_TITLES = {"redis": "Redis + Sentinel", "postgresql": "PostgreSQL (etcd + Patroni)", "services": "services"}
DEFAULT_ROLE_LABEL = "nova-postgres/role"
DEFAULT_MASTER_SET = "nova"
DEFAULT_SUPERUSER = "postgres"
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
class SecretRef:
    """A Secret key a container reads; ``fallback``: the key used instead when ``key`` is missing (the ref is
    optional, e.g. an existingSecret without sentinel-password keeps Sentinel on redis-password)."""

    namespace: str
    name: str
    key: str
    fallback: str | None = None

    def go_template(self) -> str:
        """``kubectl get secret -o`` argument printing the decoded value (the fallback key when ``key`` is absent)."""
        if not self.fallback:
            return f'go-template={{{{index .data "{self.key}" | base64decode}}}}'
        return (f'go-template={{{{with index .data "{self.key}"}}}}{{{{base64decode .}}}}{{{{else}}}}'
                f'{{{{index .data "{self.fallback}" | base64decode}}}}{{{{end}}}}')


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
    # The first rendered helm test Pod (a hook, so not a workload): the identity client pods take.
    test_pod: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    postgres_superuser: str = DEFAULT_SUPERUSER

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

    def env_secret(self, w: Workload | None, container: str | None, env_name: str) -> SecretRef | None:
        """The Secret key behind env ``env_name`` of ``container`` (any container when None) of ``w``."""
        if w is None:
            return None
        for c, e in w.env():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if e.get("name") == env_name and ref.get("name") and ref.get("key") and container in (None, c):
                return SecretRef(w.namespace, ref["name"], ref["key"], None)
        return None

    def redis_password(self) -> SecretRef | None:
        """Redis's own password (the default user): REDIS_PASSWORD of the redis container."""
        w = self.redis
        return self.env_secret(w, w.container_with_port("redis", 6379) if w else None, "REDIS_PASSWORD")

    def sentinel_password(self) -> SecretRef | None:
        """Sentinel's password: SENTINEL_PASSWORD of the sentinel container (sentinel-password); an optional ref
        falls back to redis-password, as the chart's scripts do; a chart without it uses the Redis password."""
        w = self.redis
        if w is None:
            return None
        container = w.container_with_port("sentinel", 26379)
        for c, e in w.env():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if e.get("name") == "SENTINEL_PASSWORD" and ref.get("name") and c == container:
                redis = self.redis_password()
                fallback = redis.key if ref.get("optional") and redis and redis.name == ref["name"] else None
                return SecretRef(w.namespace, ref["name"], ref["key"], fallback)
        return self.redis_password()

    def postgres_password(self) -> SecretRef | None:
        """The PostgreSQL superuser's password (PATRONI_SUPERUSER_PASSWORD)."""
        return self.env_secret(self.postgres, None, "PATRONI_SUPERUSER_PASSWORD")

    def redis_image(self) -> str | None:
        w = self.redis
        if w is None:
            return None
        name = w.container_with_port("redis", 6379)
        pod = w.spec.get("template", {}).get("spec", {})
        return next((c.get("image") for c in pod.get("containers") or [] if c.get("name") == name), None)


def _is_hook(o: KubeObject) -> bool:
    return "helm.sh/hook" in ((o.obj.get("metadata") or {}).get("annotations") or {})


def _phase(o: KubeObject) -> str:
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


def _decoded_values(o: KubeObject) -> dict[str, str]:
    out = {k: str(v) for k, v in (o.obj.get("data") or {}).items()} if o.kind == "ConfigMap" else {}
    if o.kind == "Secret":
        for k, v in (o.obj.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(str(v)).decode()
            except (ValueError, UnicodeDecodeError):
                continue
        out.update({k: str(v) for k, v in (o.obj.get("stringData") or {}).items()})
    return out


def _superuser(text: str) -> str | None:
    try:
        conf = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    user = (((conf or {}).get("postgresql") or {}).get("authentication") or {}).get("superuser") or {}
    return str(user["username"]) if isinstance(user, dict) and user.get("username") else None


def build(objects: Iterable[KubeObject], release: str, release_namespace: str) -> Inventory:
    objects = list(objects)
    test_pod = next((o.obj for o in objects if o.kind == "Pod" and _is_hook(o)
                     and (o.obj["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"), {})
    objects = [o for o in objects if not _is_hook(o)]
    superuser = DEFAULT_SUPERUSER
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
            if o.kind == "ConfigMap" and _phase(o) == "postgresql" and "patroni.yml" in values:
                superuser = _superuser(values["patroni.yml"]) or superuser
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
                     tuple(rendered_ns), master_set, role_label, test_pod, superuser)
