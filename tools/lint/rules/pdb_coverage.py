"""Each replicated workload is selected by a PodDisruptionBudget that still allows an eviction.

Replicated means replicas > 1, or a HorizontalPodAutoscaler that may scale it above one. A PDB
that selects no pod at all is reported too (its selector is wrong).

Passing::

    kind: PodDisruptionBudget
    spec: {maxUnavailable: 1, selector: {matchLabels: {app.kubernetes.io/name: api}}}
    # and a Deployment with replicas: 3 whose pod template carries that label

Failing::

    kind: PodDisruptionBudget
    spec: {minAvailable: 3, selector: {matchLabels: {app.kubernetes.io/name: api}}}
    # with a 3-replica Deployment: no node can ever be drained
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, Obj, selector_matches
from tools.lint.rules._base import Reporter, hpa_max_replicas, is_replicated, mapping

ID = "pdb-coverage"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every replicated workload is selected by a PodDisruptionBudget that allows at least one "
               "eviction; every PDB selects some pod.")
REMEDIATION = ("Add a PodDisruptionBudget in the workload's namespace whose selector matches the pod template "
               "labels, with maxUnavailable: 1 (or minAvailable below the replica count).")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`pdb-max-unavailable`, `pdb-min-available` (PDB values, not coverage)",
    "Polaris": "`missingPodDisruptionBudget`, `pdbDisruptionsIsZero`",
    "kube-score": ("`deployment-has-poddisruptionbudget`, `statefulset-has-poddisruptionbudget`, "
                "`poddisruptionbudget-has-policy`"),
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def _blocks_all(pdb: Obj, replicas: int) -> str | None:
    spec = mapping(pdb.obj.get("spec"))
    if "maxUnavailable" in spec:
        value = spec["maxUnavailable"]
        if value in (0, "0", "0%"):
            return "maxUnavailable is 0"
        return None
    value = spec.get("minAvailable")
    if isinstance(value, int) and value >= replicas:
        return f"minAvailable {value} >= {replicas} replicas"
    if value == "100%":
        return "minAvailable is 100%"
    return None


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    pdbs = index.kind("PodDisruptionBudget")
    hpa_max = hpa_max_replicas(index.kind("HorizontalPodAutoscaler"))
    used: set[int] = set()
    for w in index.workloads:
        matching = [p for p in index.kind_in("PodDisruptionBudget", w.namespace)
                    if selector_matches(mapping(p.obj.get("spec")).get("selector"), w.pod_labels)]
        used.update(id(p) for p in matching)
        if not is_replicated(w, hpa_max):
            continue
        if not matching:
            yield report(w.obj, w.labels_path,
                         f"no PodDisruptionBudget in namespace {w.namespace} selects the pods of this {w.kind}")
            continue
        replicas = w.replicas or 1
        for pdb in matching:
            why = _blocks_all(pdb, replicas)
            if why:
                yield report(pdb, "spec", f"selects {w.obj.ref} but allows no voluntary eviction ({why})")
    for pdb in pdbs:
        if id(pdb) not in used:
            yield report(pdb, "spec.selector", f"selector matches no pod in namespace {pdb.effective_namespace}")


