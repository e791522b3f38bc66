"""Every container, init containers included, has a memory limit.

Passing::

    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}

Failing::

    resources: {requests: {cpu: 100m, memory: 128Mi}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, missing_limit

ID = "memory-limit"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container (init containers included) sets a memory limit."
REMEDIATION = "Set resources.limits.memory on the container (at least its memory request)."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`unset-memory-requirements`",
    "Polaris": "`memoryLimitsMissing`",
    "kube-score": "`container-resources`",
    "checkov": "CKV_K8S_13",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    yield from missing_limit(index, report, "memory", "memory")
