"""Containers run as a non-root user with an explicit non-zero UID.

Passing::

    securityContext: {runAsNonRoot: true, runAsUser: 10001}   # pod or container level

Failing::

    securityContext: {runAsUser: 0}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, effective

ID = "run-as-non-root"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container runs as non-root (runAsNonRoot: true) with a non-zero runAsUser."
REMEDIATION = ("Set securityContext.runAsNonRoot: true and runAsUser to a non-zero UID (for example 10001) "
               "in the pod or container securityContext.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`run-as-non-root`",
    "Polaris": "`runAsRootAllowed`",
    "kube-score": "`container-security-context-user-group-id`",
    "checkov": "CKV_K8S_23, CKV_K8S_40",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        non_root, path = effective(w, c, "runAsNonRoot")
        if non_root is not True:
            yield report(w.obj, path, f"container {c.name!r} does not set runAsNonRoot: true", c.name)
        uid, uid_path = effective(w, c, "runAsUser")
        if uid is None:
            yield report(w.obj, uid_path, f"container {c.name!r} sets no runAsUser, so the image decides the UID",
                         c.name)
        elif uid == 0:
            yield report(w.obj, uid_path, f"container {c.name!r} runs as UID 0 (root)", c.name)
