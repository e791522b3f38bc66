"""Replicated workloads spread their pods: pod anti-affinity or topology spread that selects them.

Passing::

    topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway,
         labelSelector: {matchLabels: {app.kubernetes.io/name: api}}}

Failing::

    replicas: 3   # and no affinity.podAntiAffinity nor topologySpreadConstraints
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, selector_matches
from tools.lint.rules._base import Reporter, hpa_max_replicas, is_replicated, listing, mapping

ID = "replica-spread"
SEVERITY = Severity.WARNING
DESCRIPTION = ("Every replicated workload has pod anti-affinity or a topology spread constraint whose label "
               "selector matches its own pods.")
REMEDIATION = ("Add affinity.podAntiAffinity (preferred or required, topologyKey kubernetes.io/hostname) or "
               "topologySpreadConstraints whose labelSelector matches the pod template labels.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`no-anti-affinity`",
    "Polaris": "`topologySpreadConstraint`",
    "kube-score": "`deployment-has-host-podantiaffinity`, `statefulset-has-host-podantiaffinity`",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def _anti_affinity_selectors(spec: Mapping[str, Any]) -> list[Any]:
    anti = mapping(mapping(spec.get("affinity")).get("podAntiAffinity"))
    terms = listing(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms += [mapping(t).get("podAffinityTerm") for t in listing(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))]
    return [mapping(t).get("labelSelector") for t in terms]


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    hpa_max = hpa_max_replicas(index.kind("HorizontalPodAutoscaler"))
    for w in index.workloads:
        if not is_replicated(w, hpa_max):
            continue
        selectors = _anti_affinity_selectors(w.pod_spec)
        selectors += [mapping(t).get("labelSelector") for t in listing(w.pod_spec.get("topologySpreadConstraints"))]
        if not selectors:
            yield report(w.obj, w.pod_path, "replicated pods have neither podAntiAffinity nor "
                                            "topologySpreadConstraints, so they may all land on one node")
        elif not any(selector_matches(s, w.pod_labels) for s in selectors):
            yield report(w.obj, w.pod_path, "podAntiAffinity / topologySpreadConstraints select none of this "
                                            "workload's own pods, so they do not spread it")
