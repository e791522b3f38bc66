"""Containers bind no hostPort.

Passing::

    ports: [{name: http, containerPort: 8080}]

Failing::

    ports: [{name: http, containerPort: 8080, hostPort: 80}]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping

ID = "no-host-port"
SEVERITY = Severity.ERROR
DESCRIPTION = "No container port sets hostPort."
REMEDIATION = "Remove hostPort and reach the pod through a Service."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "— (`privileged-ports` is about container ports below 1024)",
    "Polaris": "`hostPortSet`",
    "kube-score": "—",
    "checkov": "CKV_K8S_26",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        for i, port in enumerate(listing(c.spec.get("ports"))):
            host_port = mapping(port).get("hostPort")
            if host_port:
                yield report(w.obj, f"{c.path}.ports[{i}].hostPort",
                             f"container {c.name!r} binds host port {host_port}", c.name)
