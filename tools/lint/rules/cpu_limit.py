"""Every container, init containers and Job/CronJob containers included, has a CPU limit.

A CPU limit caps what one container can take from its neighbours on the node; without one a busy
pod throttles everything else scheduled beside it. Some teams prefer no CPU limits (a limit
throttles a container even on an idle node), so the rule is ``info`` by default: a config file
raises it (``rules: {cpu-limit: {severity: error}}``) where the design asks for limits.

Passing::

    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}

Failing::

    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, missing_limit

ID = "cpu-limit"
SEVERITY = Severity.INFO
DESCRIPTION = "Every container (init containers and Job containers included) sets a CPU limit."
REMEDIATION = "Set resources.limits.cpu on the container (at least its CPU request)."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`unset-cpu-requirements`",
    "Polaris": "`cpuLimitsMissing`",
    "kube-score": "`container-resources`",
    "checkov": "CKV_K8S_11",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    yield from missing_limit(index, report, "cpu", "CPU")
