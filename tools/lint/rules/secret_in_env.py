"""Containers get no secret as a literal env value (use secretKeyRef).

Passing::

    env: [{name: DATABASE_PASSWORD, valueFrom: {secretKeyRef: {name: api-db, key: password}}}]

Failing::

    env: [{name: DATABASE_PASSWORD, value: hunter2}]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping
from tools.lint.rules._secrets import secret_for_name

ID = "secret-in-env"
SEVERITY = Severity.ERROR
DESCRIPTION = "No container env var holds a secret-looking literal value."
REMEDIATION = "Put the value in a Secret and use env[].valueFrom.secretKeyRef (or a secret volume) instead."
OPTIONS: dict[str, Any] = {"allowed-names": []}
EQUIVALENTS = {
    "kube-linter": "`env-var-secret`",
    "Polaris": "`sensitiveContainerEnvVar`",
    "kube-score": "—",
    "checkov": "— (CKV_K8S_35 flags secretKeyRef env, the opposite advice)",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = set(options["allowed-names"])
    for w, c in index.iter_containers():
        for i, env in enumerate(listing(c.spec.get("env"))):
            env = mapping(env)
            name, value = str(env.get("name", "")), env.get("value")
            if name in allowed or not isinstance(value, str):
                continue
            why = secret_for_name(name, value)
            if why:
                yield report(w.obj, f"{c.path}.env[{i}].value", f"env {name}: {why}", c.name)
