"""Pods mount no hostPath volume.

Passing::

    volumes: [{name: tmp, emptyDir: {}}]

Failing::

    volumes: [{name: docker, hostPath: {path: /var/run/docker.sock}}]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping

ID = "no-host-path"
SEVERITY = Severity.ERROR
DESCRIPTION = "No pod mounts a hostPath volume."
REMEDIATION = "Use an emptyDir, a PersistentVolumeClaim, a ConfigMap or a Secret instead of hostPath."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "`sensitive-host-mounts`, `docker-sock` (listed directories only)",
    "Polaris": "`hostPathSet`",
    "kube-score": "—",
    "checkov": "CKV_K8S_27 (docker socket only)",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w in index.workloads:
        for i, vol in enumerate(listing(w.pod_spec.get("volumes"))):
            host = mapping(vol).get("hostPath")
            if host is not None:
                yield report(w.obj, f"{w.pod_path}.volumes[{i}].hostPath",
                             f"volume {mapping(vol).get('name')!r} mounts host path {mapping(host).get('path')!r}")
