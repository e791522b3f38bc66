"""Containers mount their root filesystem read-only.

Passing::

    securityContext: {readOnlyRootFilesystem: true}   # plus an emptyDir for /tmp if needed

Failing::

    securityContext: {readOnlyRootFilesystem: false}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter

ID = "read-only-root-filesystem"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container sets readOnlyRootFilesystem: true."
REMEDIATION = ("Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir (or a volume) "
               "where the process must write, such as /tmp.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`no-read-only-root-fs`",
    "Polaris": "`notReadOnlyRootFilesystem`",
    "kube-score": "`container-security-context-readonlyrootfilesystem`",
    "checkov": "CKV_K8S_22",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        if c.security_context.get("readOnlyRootFilesystem") is not True:
            yield report(w.obj, f"{c.path}.securityContext.readOnlyRootFilesystem",
                         f"container {c.name!r} has a writable root filesystem", c.name)
