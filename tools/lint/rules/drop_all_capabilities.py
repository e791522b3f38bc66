"""Containers drop ALL Linux capabilities and add none back.

Passing::

    securityContext: {capabilities: {drop: [ALL]}}

Failing::

    securityContext: {capabilities: {drop: [NET_RAW], add: [NET_ADMIN]}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping

ID = "drop-all-capabilities"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container drops ALL capabilities and adds none (except those listed in allowed-add)."
REMEDIATION = "Set securityContext.capabilities.drop: [ALL] on the container and remove capabilities.add."
OPTIONS: dict[str, Any] = {"allowed-add": []}
EQUIVALENTS = {
    "kube-linter": "`drop-net-raw-capability` (NET_RAW only)",
    "Polaris": "`dangerousCapabilities`, `insecureCapabilities`",
    "kube-score": "—",
    "checkov": "CKV_K8S_37, CKV_K8S_25, CKV_K8S_28, CKV_K8S_39",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = set(options["allowed-add"])
    for w, c in index.iter_containers():
        caps = mapping(c.security_context.get("capabilities"))
        if "ALL" not in listing(caps.get("drop")):
            yield report(w.obj, f"{c.path}.securityContext.capabilities.drop",
                         f"container {c.name!r} does not drop ALL capabilities", c.name)
        added = [str(a) for a in listing(caps.get("add")) if str(a) not in allowed]
        if added:
            yield report(w.obj, f"{c.path}.securityContext.capabilities.add",
                         f"container {c.name!r} adds capabilities {', '.join(added)}", c.name)
