"""Pods do not share the node's network, PID or IPC namespace.

Passing::

    spec: {hostNetwork: false}

Failing::

    spec: {hostNetwork: true, hostPID: true}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter

ID = "no-host-namespaces"
SEVERITY = Severity.ERROR
DESCRIPTION = "No pod sets hostNetwork, hostPID or hostIPC."
REMEDIATION = "Remove hostNetwork, hostPID and hostIPC from the pod spec (or set them to false)."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`host-network`, `host-pid`, `host-ipc`",
    "Polaris": "`hostNetworkSet`, `hostPIDSet`, `hostIPCSet`",
    "kube-score": "—",
    "checkov": "CKV_K8S_19, CKV_K8S_17, CKV_K8S_18",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w in index.workloads:
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if w.pod_spec.get(key) is True:
                yield report(w.obj, f"{w.pod_path}.{key}", f"pod shares the node's namespace ({key}: true)")
