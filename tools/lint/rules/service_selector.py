"""Services select some pod, and their named target ports exist on the pods they select.

Label keys listed in ``runtime-labels`` are set on pods at run time by a controller (for example
Patroni's role label); they are left out of the match, and the rest of the selector must match.

Passing::

    kind: Service
    spec: {selector: {app.kubernetes.io/name: api}, ports: [{port: 80, targetPort: http}]}
    # with a Deployment whose pods carry app.kubernetes.io/name: api and a port named http

Failing::

    kind: Service
    spec: {selector: {app.kubernetes.io/name: apii}}   # typo: matches nothing
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, map_selector_matches
from tools.lint.rules._base import Reporter, listing, mapping

ID = "service-selector"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every Service with a selector matches the pods of some workload, and named targetPorts exist on them."
REMEDIATION = ("Make spec.selector equal to (a subset of) the pod template labels of the workload it fronts, "
               "and name the container port that targetPort refers to.")
OPTIONS: dict[str, Any] = {"runtime-labels": []}
EQUIVALENTS = {
    "kube-linter": "`dangling-service`",
    "Polaris": "—",
    "kube-score": "`service-targets-pod`",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    runtime = set(options["runtime-labels"])
    for svc in index.kind("Service"):
        spec = mapping(svc.obj.get("spec"))
        selector = {k: v for k, v in mapping(spec.get("selector")).items() if k not in runtime}
        if not mapping(spec.get("selector")) or spec.get("type") == "ExternalName":
            continue
        matched = [w for w in index.workloads_in(svc.effective_namespace) if map_selector_matches(selector, w.pod_labels)]
        if not matched:
            shown = ", ".join(f"{k}={v}" for k, v in selector.items())
            yield report(svc, "spec.selector", f"selector {shown} matches no pod in namespace {svc.effective_namespace}")
            continue
        names = {str(mapping(p).get("name")) for w in matched for c in w.containers for p in listing(c.spec.get("ports"))}
        for i, port in enumerate(listing(spec.get("ports"))):
            target = mapping(port).get("targetPort")
            if isinstance(target, str) and not target.isdigit() and target not in names:
                yield report(svc, f"spec.ports[{i}].targetPort",
                             f"targetPort {target!r} is not a named container port of the selected pods")
