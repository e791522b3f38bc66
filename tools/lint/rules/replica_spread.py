"""Replicated workloads spread their pods: pod anti-affinity or topology spread that selects them; replicated
StatefulSets (quorum and replicated state: etcd, Patroni/PostgreSQL, Redis + Sentinel) spread over zones too.

Passing::

    kind: StatefulSet
    topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app.kubernetes.io/name: etcd}}}

Failing::

    replicas: 3   # and no affinity.podAntiAffinity nor topologySpreadConstraints
    kind: StatefulSet   # anti-affinity per node only: one zone may hold two members
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
               "topologySpreadConstraints whose labelSelector matches the pod template labels; for a "
               "StatefulSet, also a topology spread constraint (or anti-affinity) over the zone key.")
# zone-kinds: workload kinds that must also spread over zone-key (empty: none).
OPTIONS: dict[str, Any] = {"zone-kinds": ["StatefulSet"], "zone-key": "topology.kubernetes.io/zone"}
EQUIVALENTS = {
    "kube-linter": "`no-anti-affinity`",
    "Polaris": "`topologySpreadConstraint`",
    "kube-score": "`deployment-has-host-podantiaffinity`, `statefulset-has-host-podantiaffinity`",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def _anti_affinity_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    anti = mapping(mapping(spec.get("affinity")).get("podAntiAffinity"))
    terms = listing(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms += [mapping(t).get("podAffinityTerm") for t in listing(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))]
    return [mapping(t) for t in terms]


def _spread_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Anti-affinity terms and topology spread constraints: each has labelSelector and topologyKey."""
    return _anti_affinity_terms(spec) + [mapping(t) for t in listing(spec.get("topologySpreadConstraints"))]


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    hpa_max = hpa_max_replicas(index.kind("HorizontalPodAutoscaler"))
    for w in index.workloads:
        if not is_replicated(w, hpa_max):
            continue
        terms = _spread_terms(w.pod_spec)
        own = [t for t in terms if selector_matches(t.get("labelSelector"), w.pod_labels)]
        if not terms:
            yield report(w.obj, w.pod_path, "replicated pods have neither podAntiAffinity nor "
                                            "topologySpreadConstraints, so they may all land on one node")
        elif not own:
            yield report(w.obj, w.pod_path, "podAntiAffinity / topologySpreadConstraints select none of this "
                                            "workload's own pods, so they do not spread it")
        elif w.kind in options.get("zone-kinds", []) \
                and not any(t.get("topologyKey") == options.get("zone-key") for t in own):
            yield report(w.obj, w.pod_path, f"replicated {w.kind} does not spread its pods over "
                                            f"{options.get('zone-key')}, so one zone may hold two of its members")
