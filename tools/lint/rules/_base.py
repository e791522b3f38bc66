"""Helpers shared by the rule modules: building findings and reading security contexts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Container, Obj, Workload


class Reporter:
    """Makes this rule's findings: ``report(obj, path, message, container=None)``."""

    def __init__(self, rule_id: str, severity: Severity, remediation: str) -> None:
        self.rule_id = rule_id
        self.severity = severity
        self.remediation = remediation

    def __call__(self, obj: Obj, path: str, message: str, container: str | None = None) -> Finding:
        return Finding(
            rule=self.rule_id, severity=self.severity, kind=obj.kind, namespace=obj.namespace,
            name=obj.name, container=container, path=path, template=obj.source, message=message,
            remediation=self.remediation, line=obj.line,
        )


def effective(w: Workload, c: Container, key: str) -> tuple[Any, str]:
    """A securityContext field as the kubelet sees it (container overrides pod), with its JSON path."""
    if key in c.security_context:
        return c.security_context[key], f"{c.path}.securityContext.{key}"
    if key in w.pod_security_context:
        return w.pod_security_context[key], f"{w.pod_path}.securityContext.{key}"
    return None, f"{c.path}.securityContext.{key}"


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_replicated(w: Workload, hpa_max: Mapping[tuple[str, str, str], int]) -> bool:
    """More than one pod at some point: replicas > 1, or an HPA that may scale it above one."""
    replicas = w.replicas
    if replicas is None:
        return False
    return replicas > 1 or hpa_max.get((w.kind, w.namespace, w.obj.name), 0) > 1


def hpa_max_replicas(hpas: list[Obj]) -> dict[tuple[str, str, str], int]:
    """(target kind, namespace, name) -> the HPA's maxReplicas."""
    out: dict[tuple[str, str, str], int] = {}
    for hpa in hpas:
        spec = mapping(hpa.obj.get("spec"))
        ref = mapping(spec.get("scaleTargetRef"))
        maximum = spec.get("maxReplicas")
        if isinstance(maximum, int) and ref.get("kind") and ref.get("name"):
            out[(str(ref["kind"]), hpa.effective_namespace, str(ref["name"]))] = maximum
    return out


def missing_probe(index: Any, report: Reporter, probe: str) -> Iterator[Finding]:
    """Findings for long-running containers without ``probe`` (livenessProbe, readinessProbe)."""
    for w, c in index.iter_containers():
        if c.long_running and not c.spec.get(probe):
            yield report(w.obj, f"{c.path}.{probe}", f"container {c.name!r} has no {probe}", c.name)


def missing_limit(index: Any, report: Reporter, resource: str, label: str) -> Iterator[Finding]:
    """Findings for containers (init and Job containers included) without ``resources.limits.<resource>``."""
    for w, c in index.iter_containers():
        limits = mapping(mapping(c.spec.get("resources")).get("limits"))
        if limits.get(resource) in (None, "", 0, "0"):
            yield report(w.obj, f"{c.path}.resources.limits.{resource}", f"container {c.name!r} has no {label} limit",
                         c.name)
