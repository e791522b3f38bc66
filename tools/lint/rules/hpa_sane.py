"""HorizontalPodAutoscalers are sane: minReplicas <= maxReplicas, the target exists, and resource
metrics have requests to measure against.

Passing::

    kind: HorizontalPodAutoscaler
    spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}, minReplicas: 3, maxReplicas: 10}

Failing::

    spec: {scaleTargetRef: {kind: Deployment, name: missing}, minReplicas: 5, maxReplicas: 3}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, workload_of
from tools.lint.rules._base import Reporter, listing, mapping

ID = "hpa-sane"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every HorizontalPodAutoscaler has 1 <= minReplicas <= maxReplicas, targets an object of the "
               "render, and its CPU/memory utilization metrics have matching requests on every container.")
REMEDIATION = ("Point scaleTargetRef at the workload's kind and name, keep minReplicas <= maxReplicas, and set "
               "resources.requests for each resource the HPA measures.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`dangling-horizontalpodautoscaler`",
    "Polaris": "`hpaMinAvailability`, `hpaMaxAvailability` (replica counts only)",
    "kube-score": "`horizontalpodautoscaler-has-target`",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for hpa in index.kind("HorizontalPodAutoscaler"):
        spec = mapping(hpa.obj.get("spec"))
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(low, int) and low < 1:
            yield report(hpa, "spec.minReplicas", f"minReplicas {low} is below 1")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield report(hpa, "spec.minReplicas", f"minReplicas {low} is greater than maxReplicas {high}")
        ref = mapping(spec.get("scaleTargetRef"))
        target = index.get(str(ref.get("kind")), hpa.effective_namespace, str(ref.get("name")))
        if target is None:
            yield report(hpa, "spec.scaleTargetRef",
                         f"target {ref.get('kind')}/{ref.get('name')} is not in namespace {hpa.effective_namespace}")
            continue
        w = workload_of(target)
        if w is None:
            continue
        for i, metric in enumerate(listing(spec.get("metrics"))):
            resource = mapping(mapping(metric).get("resource"))
            name = resource.get("name")
            if mapping(metric).get("type") != "Resource" or mapping(resource.get("target")).get("type") != "Utilization":
                continue
            for c in w.containers:
                if not mapping(mapping(c.spec.get("resources")).get("requests")).get(name):
                    yield report(hpa, f"spec.metrics[{i}]",
                                 f"scales on {name} utilization but container {c.name!r} of {target.ref} "
                                 f"requests no {name}")
