"""Objects are valid against the strict Kubernetes schema of each checked version (unknown fields are errors).

Schemas come from kubernetes-validate for built-in kinds and from the vendored, pinned CRDs in
tools/crds for custom resources (Prometheus Operator, Gateway API, cert-manager, Strimzi, Argo CD, Flux).
A built-in API group/version that a Kubernetes version does not serve (for example ``policy/v1beta1``
on 1.25+) is an error; other custom resources are left to ``kube-schema-unavailable``.

Passing::

    apiVersion: v1
    kind: Service
    spec: {selector: {app: api}, ports: [{port: 80, targetPort: http}]}

Failing::

    apiVersion: v1
    kind: Service
    spec: {selector: {app: api}, ports: [{port: "80"}], clusterIp: None}   # wrong type, unknown field
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, Obj
from tools.lint.rules._base import Reporter
from tools.lint.schema import schemas_for

ID = "kube-schema"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every object validates against the strict Kubernetes JSON schema of each checked Kubernetes version."
REMEDIATION = ("Fix the field named in the message (check spelling, nesting and type against the Kubernetes API "
               "reference for that version), or move to an API version the cluster serves.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "— (kubeconform/kubeval territory; `no-extensions-v1beta` covers one removed API group)",
    "Polaris": "—",
    "kube-score": "— (`stable-version` flags deprecated APIs only)",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def is_builtin(api_version: str) -> bool:
    """Core and *.k8s.io groups (and dotless ones such as apps, batch) ship with Kubernetes."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def _errors(o: Obj, versions: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for version in versions:
        validate = schemas_for(version).validator(o.api_version, o.kind)
        if validate is None:
            if is_builtin(o.api_version):
                found.setdefault(("apiVersion", f"{o.api_version} {o.kind} is not served"), []).append(version)
            continue
        for path, message in validate(o.obj):
            found.setdefault((path, message), []).append(version)
    return found


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    versions = index.kube_versions
    for o in index.objects:
        if not o.api_version or not o.kind:
            yield report(o, "apiVersion" if not o.api_version else "kind", "object has no apiVersion or kind")
            continue
        for (path, message), seen in _errors(o, versions).items():
            yield report(o, path, f"{message} (Kubernetes {', '.join(seen)})")
