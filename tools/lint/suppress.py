"""Suppressions, each with a reason: object annotations and config-file entries.

Annotation keys (on the object's metadata, e.g. a Deployment's, not its pod template's)::

    nova-lint.io/ignore.<rule-id>: "<reason>"               every finding of the rule on the object
    nova-lint.io/ignore.<rule-id>.<container>: "<reason>"   only those about that container

Rule ids and container names contain no dots, so the key is unambiguous.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from tools.lint.finding import Finding
from tools.lint.model import Obj

ANNOTATION_PREFIX = "nova-lint.io/ignore."
UNSUPPRESSIBLE = frozenset({"invalid-suppression"})


@dataclass(frozen=True, slots=True)
class AnnotationSuppression:
    key: str
    rule: str
    container: str | None
    reason: str


def annotation_suppressions(obj: Obj) -> list[AnnotationSuppression]:
    """The ``nova-lint.io/ignore.*`` annotations of an object, parsed (validity is checked by a rule)."""
    out = []
    for key, value in obj.annotations.items():
        key = str(key)
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        rule, _, container = key[len(ANNOTATION_PREFIX):].partition(".")
        out.append(AnnotationSuppression(key, rule, container or None, "" if value is None else str(value).strip()))
    return out


@dataclass(frozen=True, slots=True)
class ConfigSuppression:
    """A ``suppress:`` entry of the config file; every field but rule and reason is an optional glob."""

    rule: str
    reason: str
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    container: str | None = None
    template: str | None = None

    def matches(self, f: Finding) -> bool:
        if f.rule != self.rule:
            return False
        for pattern, value in ((self.kind, f.kind), (self.namespace, f.namespace), (self.name, f.name),
                               (self.container, f.container), (self.template, f.template)):
            if pattern is not None and not fnmatch.fnmatchcase(value or "", pattern):
                return False
        return True


def suppressed_by_annotation(f: Finding, entries: list[AnnotationSuppression], known: set[str]) -> bool:
    if f.rule in UNSUPPRESSIBLE:
        return False
    for s in entries:
        if s.rule == f.rule and s.reason and s.rule in known and (s.container is None or s.container == f.container):
            return True
    return False
