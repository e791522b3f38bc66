"""Every pod is selected by at least one NetworkPolicy in its namespace.

Passing::

    kind: NetworkPolicy
    spec: {podSelector: {}, policyTypes: [Ingress, Egress]}   # default deny for the namespace

Failing::

    # a Deployment in namespace nova-services and no NetworkPolicy there
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, selector_matches
from tools.lint.rules._base import Reporter, mapping

ID = "network-policy-coverage"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every pod is selected by a NetworkPolicy in its namespace (so it is not open to everything)."
REMEDIATION = ("Add a NetworkPolicy in the pod's namespace whose podSelector matches the pod template labels "
               "(a default-deny policy with podSelector: {} plus explicit allows).")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`non-isolated-pod`",
    "Polaris": "`missingNetworkPolicy`",
    "kube-score": "`pod-networkpolicy`",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w in index.workloads:
        if not any(selector_matches(mapping(p.obj.get("spec")).get("podSelector", {}), w.pod_labels)
                   for p in index.kind_in("NetworkPolicy", w.namespace)):
            yield report(w.obj, w.labels_path,
                         f"no NetworkPolicy in namespace {w.namespace} selects these pods")
