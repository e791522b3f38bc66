"""Kinds with no bundled schema (custom resources) are reported once each, as information.

Passing::

    apiVersion: apps/v1
    kind: Deployment     # schema bundled with kubernetes-validate

Failing (reported as info, not failed by default)::

    apiVersion: monitoring.coreos.com/v1
    kind: ServiceMonitor
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, Obj
from tools.lint.rules._base import Reporter
from tools.lint.rules.kube_schema import is_builtin
from tools.lint.schema import schemas_for

ID = "kube-schema-unavailable"
SEVERITY = Severity.INFO
DESCRIPTION = "Kinds without a bundled schema (CRDs) are reported once per apiVersion/kind and not schema-checked."
REMEDIATION = "Nothing to fix in the object; validate custom resources against their CRD's schema in a cluster."
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    first: dict[tuple[str, str], Obj] = {}
    count: dict[tuple[str, str], int] = {}
    for o in index.objects:
        if not o.api_version or not o.kind or is_builtin(o.api_version):
            continue
        key = (o.api_version, o.kind)
        if key not in count:
            if any(schemas_for(v).validator(*key) is not None for v in index.kube_versions):
                count[key] = -1
                continue
            first[key], count[key] = o, 0
        if count[key] >= 0:
            count[key] += 1
    for key, o in first.items():
        n = count[key]
        yield report(o, "apiVersion", f"no schema bundled for {key[0]} {key[1]} (custom resource?): "
                                      f"{n} object{'s' if n != 1 else ''} not schema-checked")
