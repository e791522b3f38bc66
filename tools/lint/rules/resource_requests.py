"""Every container, init containers included, requests CPU and memory.

Passing::

    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 128Mi}}

Failing::

    resources: {limits: {memory: 128Mi}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, mapping

ID = "resource-requests"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container (init containers included) sets CPU and memory requests."
REMEDIATION = "Set resources.requests.cpu and resources.requests.memory on the container."
OPTIONS: dict[str, Any] = {"resources": ["cpu", "memory"]}
EQUIVALENTS = {
    "kube-linter": "`unset-cpu-requirements`, `unset-memory-requirements`",
    "Polaris": "`cpuRequestsMissing`, `memoryRequestsMissing`",
    "kube-score": "`container-resources`",
    "checkov": "CKV_K8S_10, CKV_K8S_12",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        requests = mapping(mapping(c.spec.get("resources")).get("requests"))
        for res in options["resources"]:
            if requests.get(res) in (None, "", 0, "0"):
                yield report(w.obj, f"{c.path}.resources.requests.{res}",
                             f"container {c.name!r} requests no {res}", c.name)
