"""terminationGracePeriodSeconds is longer than the preStop hook's wait, so the process still gets
SIGTERM and time to shut down after the pause.

The wait is ``lifecycle.preStop.sleep.seconds`` or a ``sleep N`` in a preStop exec command.

Passing::

    terminationGracePeriodSeconds: 30
    containers: [{lifecycle: {preStop: {exec: {command: [sh, -c, "sleep 5"]}}}}]

Failing::

    terminationGracePeriodSeconds: 10
    containers: [{lifecycle: {preStop: {sleep: {seconds: 15}}}}]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter, listing, mapping

ID = "termination-grace-period"
SEVERITY = Severity.ERROR
DESCRIPTION = ("terminationGracePeriodSeconds (default 30) exceeds every preStop hook's wait by at least "
               "min-margin-seconds.")
REMEDIATION = "Raise terminationGracePeriodSeconds above the preStop pause plus the time the process needs to stop."
OPTIONS: dict[str, Any] = {"min-margin-seconds": 1}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)

_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)s?\b")


def prestop_wait(container: Mapping[str, Any]) -> float | None:
    """Seconds the container's preStop hook waits (None when it has no recognisable wait)."""
    pre = mapping(mapping(container.get("lifecycle")).get("preStop"))
    seconds = mapping(pre.get("sleep")).get("seconds")
    if isinstance(seconds, (int, float)):
        return float(seconds)
    command = " ".join(str(p) for p in listing(mapping(pre.get("exec")).get("command")))
    waits = [float(m) for m in _SLEEP.findall(command)]
    return sum(waits) if waits else None


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    margin = options["min-margin-seconds"]
    for w, c in index.iter_containers():
        wait = prestop_wait(c.spec)
        if wait is None:
            continue
        grace = w.pod_spec.get("terminationGracePeriodSeconds", 30)
        if isinstance(grace, (int, float)) and grace - wait < margin:
            yield report(w.obj, f"{w.pod_path}.terminationGracePeriodSeconds",
                         f"grace period {grace}s does not outlast container {c.name!r}'s preStop wait of "
                         f"{wait:g}s by {margin}s", c.name)
