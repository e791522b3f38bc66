"""Who connects to what, and as whom: the client identities of ``tools.cluster`` and ``tests/cluster``.

The charts' NetworkPolicies admit only the services and the helm test pods to Redis, the write-safe endpoint
and PostgreSQL (Kind enforces NetworkPolicy). So a probe never runs from a Redis or PostgreSQL pod against a
Service: it runs from a short-lived *client pod* that carries the helm test pods' identity (their labels, in
their namespace, with their security context), built here from the rendered test Pod. Every probe and every
cluster test declares its connections as ``Access`` data; tests/unit/test_cluster_reachability.py proves
each one allowed by the rendered policies of every ci/ scenario.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# Client identities.
CLIENT = "client"  # the short-lived pod of client_pod_manifest (the helm test pods' identity)
HELM_TEST = "helm-test"  # the rendered helm test pods themselves
# A workload's own pod (kubectl exec into it) is named by its role: "redis", "postgres", "etcd".

# Targets: a Service role (resolved from the render by suffix), "pod:<role>" (a workload's pods directly, as a
# Sentinel-aware client reaches the master), "service:<component>" (a Nova service), "dns", or "self"
# (127.0.0.1 inside the exec'd pod: loopback, never subject to NetworkPolicy).
SERVICE_TARGETS = {"redis-master": ("redis", "-master"), "redis-sentinel": ("redis", "-sentinel"),
                   "postgres-primary": ("postgresql", "-primary"), "postgres-replicas": ("postgresql", "-replicas"),
                   "etcd": ("postgresql", "-etcd")}
SELF = "self"
DNS = "dns"

CLIENT_TTL_SECONDS = 600
HOOK_ANNOTATIONS = ("helm.sh/hook", "helm.sh/hook-delete-policy", "helm.sh/hook-weight")


@dataclass(frozen=True)
class Access:
    """One connection: ``client`` opens TCP to ``target`` on its port named ``port`` (or a number)."""

    client: str
    target: str
    port: str

    def __str__(self) -> str:
        return f"{self.client} -> {self.target}:{self.port}"


def client_pod_name(release: str, suffix: str = "cluster-client") -> str:
    return f"{release}-{suffix}"[:63].rstrip("-")


def client_pod_manifest(test_pod: dict[str, Any], redis_image: str | None, name: str,
                        ttl: int = CLIENT_TTL_SECONDS) -> dict[str, Any]:
    """A pod with the helm test pod's identity (labels, namespace, security context, pull secrets) that only
    sleeps, so probes can ``kubectl exec`` clients in it: a ``redis`` container (redis-cli, the chart's own
    Redis image) when Redis is in the release, a ``psql`` container (the test pods' PostgreSQL client image)
    when they check PostgreSQL. ``activeDeadlineSeconds`` ends it even if nobody deletes it."""
    meta = test_pod.get("metadata") or {}
    spec = test_pod.get("spec") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != "nova.io/tested-service"}
    labels["nova.io/cluster-client"] = "true"
    every = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    base = every[0] if every else {}
    images: list[tuple[str, str]] = []
    if redis_image:
        images.append(("redis", redis_image))
    psql = next((c.get("image") for c in every if c.get("name") == "check-postgres"), None)
    if psql:
        images.append(("psql", psql))
    containers = [{
        "name": cname, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(ttl)],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "securityContext": copy.deepcopy(base.get("securityContext") or {}),
        "resources": copy.deepcopy(base.get("resources") or {}),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    } for cname, image in images]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "activeDeadlineSeconds": ttl, "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "securityContext": copy.deepcopy(spec.get("securityContext") or {}),
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
    }
    if spec.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = copy.deepcopy(spec["imagePullSecrets"])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": meta.get("namespace"), "labels": labels},
            "spec": pod_spec}
