"""Containers set allowPrivilegeEscalation: false explicitly (it defaults to true).

Passing::

    securityContext: {allowPrivilegeEscalation: false}

Failing::

    securityContext: {}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter

ID = "no-privilege-escalation"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container sets allowPrivilegeEscalation: false."
REMEDIATION = "Set securityContext.allowPrivilegeEscalation: false on the container."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`privilege-escalation-container`",
    "Polaris": "`privilegeEscalationAllowed`",
    "kube-score": "—",
    "checkov": "CKV_K8S_20",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        if c.security_context.get("allowPrivilegeEscalation") is not False:
            yield report(w.obj, f"{c.path}.securityContext.allowPrivilegeEscalation",
                         f"container {c.name!r} may gain privileges (allowPrivilegeEscalation is not false)",
                         c.name)
