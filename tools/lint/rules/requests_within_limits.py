"""No container requests more of a resource than its limit allows.

The API server refuses such a pod (``must be less than or equal to cpu limit``), so a chart that
renders one fails at install time; this finds it before. Amounts are compared exactly
(``1500m`` > ``1``, ``1Gi`` > ``1000Mi``); an amount that is not a valid quantity, or negative, is
left to ``quantity-format``.

Passing::

    resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: "1", memory: 512Mi}}

Failing::

    resources: {requests: {cpu: "2", memory: 1Gi}, limits: {cpu: 500m, memory: 512Mi}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, mapping
from tools.quantity import parse_quantity

ID = "requests-within-limits"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container's CPU and memory requests are at most its limits."
REMEDIATION = "Lower resources.requests or raise resources.limits so that each request is <= its limit."
OPTIONS: dict[str, Any] = {"resources": ["cpu", "memory"]}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w, c in index.iter_containers():
        resources = mapping(c.spec.get("resources"))
        requests, limits = mapping(resources.get("requests")), mapping(resources.get("limits"))
        for name in options["resources"]:
            if requests.get(name) is None or limits.get(name) is None:
                continue
            try:
                request, limit = parse_quantity(requests[name]), parse_quantity(limits[name])
            except ValueError:
                continue
            if request > limit >= 0:
                yield report(w.obj, f"{c.path}.resources.requests.{name}",
                             f"container {c.name!r}: {name} request {requests[name]} is above its limit "
                             f"{limits[name]} ({c.path}.resources.limits.{name})", c.name)
