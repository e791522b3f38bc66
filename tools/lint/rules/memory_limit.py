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
from tools.lint.rules._base import Reporter, mapping

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
    for w, c in index.iter_containers():
        limits = mapping(mapping(c.spec.get("resources")).get("limits"))
        if limits.get("memory") in (None, "", 0, "0"):
            yield report(w.obj, f"{c.path}.resources.limits.memory",
                         f"container {c.name!r} has no memory limit", c.name)
