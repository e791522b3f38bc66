"""Long-running containers have a readiness probe.

Passing::

    readinessProbe: {httpGet: {path: /healthz, port: http}}

Failing::

    containers: [{name: api, image: "nova/api:1.0"}]   # no readinessProbe
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, missing_probe

ID = "readiness-probe"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every long-running container (not Jobs, not plain init containers) has a readinessProbe."
REMEDIATION = "Add a readinessProbe (httpGet, tcpSocket, grpc or exec) to the container."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`no-readiness-probe`",
    "Polaris": "`readinessProbeMissing`",
    "kube-score": "`pod-probes`",
    "checkov": "CKV_K8S_9",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    yield from missing_probe(index, report, "readinessProbe")
