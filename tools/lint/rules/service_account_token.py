"""The service account token is not mounted unless the pod needs the Kubernetes API.

A pod needs the API when its ServiceAccount is bound by a RoleBinding or ClusterRoleBinding in
the same render, or is listed in ``api-service-accounts``.

Passing::

    spec: {serviceAccountName: api, automountServiceAccountToken: false}

Failing::

    spec: {serviceAccountName: api}   # and the ServiceAccount does not disable automount either
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping

ID = "service-account-token"
SEVERITY = Severity.WARNING
DESCRIPTION = ("Pods whose ServiceAccount has no RBAC binding do not mount a service account token "
               "(automountServiceAccountToken: false on the pod or its ServiceAccount).")
REMEDIATION = "Set automountServiceAccountToken: false on the pod spec or on its ServiceAccount."
OPTIONS: dict[str, Any] = {"api-service-accounts": []}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "`automountServiceAccountToken`",
    "kube-score": "—",
    "checkov": "CKV_K8S_38",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def _bound_accounts(index: Index) -> set[tuple[str, str]]:
    bound: set[tuple[str, str]] = set()
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for b in index.kind(kind):
            for s in listing(b.obj.get("subjects")):
                s = mapping(s)
                if s.get("kind") == "ServiceAccount":
                    bound.add((str(s.get("namespace") or b.effective_namespace), str(s.get("name"))))
    return bound


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    bound = _bound_accounts(index)
    listed = set(options["api-service-accounts"])
    for w in index.workloads:
        account = str(w.pod_spec.get("serviceAccountName") or w.pod_spec.get("serviceAccount") or "default")
        if (w.namespace, account) in bound or account in listed or f"{w.namespace}/{account}" in listed:
            continue
        automount = w.pod_spec.get("automountServiceAccountToken")
        if automount is False:
            continue
        sa = index.get("ServiceAccount", w.namespace, account)
        if automount is None and sa is not None and sa.obj.get("automountServiceAccountToken") is False:
            continue
        yield report(w.obj, f"{w.pod_path}.automountServiceAccountToken",
                     f"pods mount the token of ServiceAccount {account!r}, which no Role or ClusterRole binds")
