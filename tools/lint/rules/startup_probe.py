"""Slow-starting containers have a startup probe, so liveness does not kill them while they start.

A container counts as slow when it mounts the persistent data of a workload kind listed in
``slow-kinds`` (a StatefulSet's volumeClaimTemplates: databases replay logs, Redis loads its
RDB/AOF; exporter sidecars without the data are not slow), or when its liveness or readiness probe
waits ``slow-start-seconds`` or more (``initialDelaySeconds``) before the first check.

Passing::

    startupProbe: {tcpSocket: {port: 6379}, failureThreshold: 30, periodSeconds: 5}

Failing::

    livenessProbe: {tcpSocket: {port: 6379}, initialDelaySeconds: 60}   # no startupProbe
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Container, Index, Workload
from tools.lint.rules._base import Reporter, listing, mapping

ID = "startup-probe"
SEVERITY = Severity.WARNING
DESCRIPTION = ("Slow-starting long-running containers (StatefulSets, or probes delayed by slow-start-seconds or "
               "more) have a startupProbe.")
REMEDIATION = ("Add a startupProbe with failureThreshold x periodSeconds covering the worst start-up time and "
               "drop the long initialDelaySeconds from liveness/readiness.")
OPTIONS: dict[str, Any] = {"slow-start-seconds": 30, "slow-kinds": ["StatefulSet"]}
EQUIVALENTS = {
    "kube-linter": "— (`startup-port` only checks the probe's port)",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def _holds_data(w: Workload, c: Container) -> bool:
    """Does the container mount one of the workload's volumeClaimTemplates (all containers if it has none)?"""
    claims = {mapping(mapping(t).get("metadata")).get("name")
              for t in listing(mapping(w.obj.obj.get("spec")).get("volumeClaimTemplates"))}
    if not claims:
        return True
    return any(mapping(m).get("name") in claims for m in listing(c.spec.get("volumeMounts")))


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    threshold = options["slow-start-seconds"]
    slow_kinds = set(options["slow-kinds"])
    for w, c in index.iter_containers():
        if not c.long_running or c.init or c.spec.get("startupProbe"):
            continue
        delays = [mapping(c.spec.get(p)).get("initialDelaySeconds") or 0 for p in ("livenessProbe", "readinessProbe")]
        delay = max((d for d in delays if isinstance(d, (int, float))), default=0)
        if w.kind in slow_kinds and _holds_data(w, c):
            why = f"it mounts the persistent data of a {w.kind}"
        elif delay >= threshold:
            why = f"its probes wait {delay}s before the first check"
        else:
            continue
        yield report(w.obj, f"{c.path}.startupProbe",
                     f"container {c.name!r} starts slowly ({why}) but has no startupProbe", c.name)
