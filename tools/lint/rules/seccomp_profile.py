"""Containers run under a seccomp profile: RuntimeDefault or Localhost.

Passing::

    spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}}

Failing::

    securityContext: {seccompProfile: {type: Unconfined}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, effective, mapping

ID = "seccomp-profile"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container runs with seccompProfile.type RuntimeDefault or Localhost (pod or container level)."
REMEDIATION = "Set securityContext.seccompProfile.type: RuntimeDefault in the pod securityContext."
OPTIONS: dict[str, Any] = {"allowed-types": ["RuntimeDefault", "Localhost"]}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "— (`linuxHardening` accepts seccomp among alternatives)",
    "kube-score": "`container-seccomp-profile` (optional test)",
    "checkov": "CKV_K8S_31",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = list(options["allowed-types"])
    for w, c in index.iter_containers():
        profile, path = effective(w, c, "seccompProfile")
        kind = mapping(profile).get("type")
        if kind not in allowed:
            what = f"seccomp profile {kind}" if kind else "no seccomp profile"
            yield report(w.obj, f"{path}.type" if profile is not None else path,
                         f"container {c.name!r} runs with {what} (allowed: {', '.join(allowed)})", c.name)
