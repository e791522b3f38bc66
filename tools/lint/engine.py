"""Run the registered rules over one set of objects, apply severities and suppressions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tools.lint.config import Config
from tools.lint.finding import Finding
from tools.lint.model import Index, Obj
from tools.lint.rules import REGISTRY, RULES
from tools.lint.suppress import AnnotationSuppression, annotation_suppressions, suppressed_by_annotation


def lint(objects: Sequence[Obj], config: Config, kube_versions: Sequence[str], input_name: str = "") -> list[Finding]:
    """Findings of every enabled rule, minus suppressed ones, with the configured severities."""
    index = Index(list(objects), tuple(kube_versions))
    known = set(REGISTRY)
    annotated: dict[tuple[str, str | None, str], list[AnnotationSuppression]] = {}
    for o in index.objects:
        entries = annotation_suppressions(o)
        if entries:
            annotated[(o.kind, o.namespace, o.name)] = entries
    findings: list[Finding] = []
    for rule in RULES:
        severity = config.severity(rule)
        if severity is None:
            continue
        options = config.rule_options(rule)
        for f in rule.check(index, options):
            entries = annotated.get((f.kind, f.namespace, f.name))
            if entries and suppressed_by_annotation(f, entries, known):
                continue
            if any(s.matches(f) for s in config.suppressions):
                continue
            if f.severity != severity or input_name:
                f = replace(f, severity=severity, input=input_name)
            findings.append(f)
    return findings
