"""Containers are not privileged.

Passing::

    securityContext: {privileged: false}   # or unset

Failing::

    securityContext: {privileged: true}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter

ID = "no-privileged"
SEVERITY = Severity.ERROR
DESCRIPTION = "No container runs privileged."
REMEDIATION = "Remove securityContext.privileged (or set it to false); grant only the capability actually needed."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`privileged-container`",
    "Polaris": "`runAsPrivileged`",
    "kube-score": "`container-security-context-privileged`",
    "checkov": "CKV_K8S_16",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        if c.security_context.get("privileged") is True:
            yield report(w.obj, f"{c.path}.securityContext.privileged",
                         f"container {c.name!r} is privileged", c.name)
