"""Long-running containers have a liveness probe.

Passing::

    livenessProbe: {httpGet: {path: /healthz, port: http}}

Failing::

    containers: [{name: api, image: "nova/api:1.0"}]   # no livenessProbe
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, missing_probe

ID = "liveness-probe"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every long-running container (not Jobs, not plain init containers) has a livenessProbe."
REMEDIATION = "Add a livenessProbe (httpGet, tcpSocket, grpc or exec) to the container."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`no-liveness-probe`",
    "Polaris": "`livenessProbeMissing`",
    "kube-score": "`pod-probes`",
    "checkov": "CKV_K8S_8",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    yield from missing_probe(index, report, "livenessProbe")
