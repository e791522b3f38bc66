"""Suppression annotations name a known rule, an existing container, and carry a reason.

Passing::

    metadata:
      annotations:
        nova-lint.io/ignore.no-host-port.exporter: "node exporter must bind the node's port 9100"

Failing::

    metadata:
      annotations:
        nova-lint.io/ignore.no-such-rule: ""
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, workload_of
from tools.lint.rules._base import Reporter
from tools.lint.suppress import UNSUPPRESSIBLE, annotation_suppressions

ID = "invalid-suppression"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every nova-lint.io/ignore.<rule>[.<container>] annotation names a registered rule (not this one), "
               "an existing container, and gives a non-empty reason.")
REMEDIATION = ("Use nova-lint.io/ignore.<rule-id>[.<container>]: \"<why this is safe>\" with a rule id from "
               "docs/lint-rules.md, or remove the annotation.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "— (`ignore-check.kube-linter.io/<check>` takes no mandatory reason)",
    "Polaris": "— (exemption annotations, no reason)",
    "kube-score": "— (`kube-score/ignore`, no reason)",
    "checkov": "— (`checkov.io/skip<N>` comment, reason optional)",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    from tools.lint.rules import REGISTRY  # the registry imports this module

    for o in index.objects:
        entries = annotation_suppressions(o)
        if not entries:
            continue
        w = workload_of(o)
        names = {c.name for c in w.containers} if w else set()
        for s in entries:
            path = f"metadata.annotations.{s.key}"
            if s.rule not in REGISTRY:
                yield report(o, path, f"suppresses unknown rule {s.rule!r}")
            elif s.rule in UNSUPPRESSIBLE:
                yield report(o, path, f"rule {s.rule!r} cannot be suppressed")
            if not s.reason:
                yield report(o, path, "suppression has no reason")
            if s.container is not None and s.container not in names:
                yield report(o, path, f"suppression names container {s.container!r}, which {o.ref} does not have")
