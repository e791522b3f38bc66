r"""ConfigMaps hold no secret-looking values (use a Secret).

Keys named like secrets (password, token, api_key ...) with a literal value, private keys, cloud
and JWT tokens, URLs with a password, and config-file lines such as ``requirepass s3cr3t``.
Placeholders (``$VAR``, ``${VAR}``, ``%s``, paths, empty) are fine.

Passing::

    data: {redis.conf: "requirepass ${REDIS_PASSWORD}\n", LOG_LEVEL: info}

Failing::

    data: {DATABASE_PASSWORD: hunter2}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, mapping
from tools.lint.rules._secrets import secret_for_name, secret_in_file

ID = "secret-in-configmap"
SEVERITY = Severity.ERROR
DESCRIPTION = "No ConfigMap value looks like a secret (named like one with a literal value, or a known token shape)."
REMEDIATION = ("Move the value to a Secret and reference it (secretKeyRef, envFrom secretRef or a secret volume); "
               "keep only a placeholder in the ConfigMap.")
OPTIONS: dict[str, Any] = {"allowed-keys": []}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "`sensitiveConfigmapContent`",
    "kube-score": "—",
    "checkov": "— (only its separate secrets framework scans files)",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    allowed = set(options["allowed-keys"])
    for cm in index.kind("ConfigMap"):
        for key, value in mapping(cm.obj.get("data")).items():
            if key in allowed or not isinstance(value, str):
                continue
            why = secret_in_file(value) if "\n" in value.strip() else secret_for_name(str(key), value)
            if why:
                yield report(cm, f"data.{key}", f"key {key!r} {why}" if not why.startswith("'") else why)
