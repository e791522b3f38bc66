"""The one result type of tools.lint: a frozen Finding, and the severity scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """Ordered severities; ``fail-on`` in the config picks the lowest one that fails a run."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``"error"`` -> Severity.ERROR; raises ValueError naming the accepted words."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {text!r}: use one of {', '.join(s.name.lower() for s in cls)}"
            ) from None


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation on one object (and container), traced to the template that made it."""

    rule: str
    severity: Severity
    kind: str
    namespace: str | None
    name: str
    container: str | None
    path: str
    template: str | None
    message: str
    remediation: str
    line: int | None = None
    input: str = ""

    @property
    def object_ref(self) -> str:
        """``Kind/namespace/name`` (namespace omitted when unset)."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def sort_key(self) -> tuple[Any, ...]:
        return (self.input, self.template or "", self.kind, self.namespace or "", self.name,
                self.container or "", -int(self.severity), self.rule, self.path, self.message)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["severity"] = Severity.parse(values["severity"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RunError:
    """Something the run could not check: a render or a load that failed, or nothing to lint at all.

    ``kind`` is ``render`` (helm failed), ``input`` (a manifest file or stdin could not be read or
    parsed) or ``empty`` (no objects); ``input`` says what was being loaded (chart, values files,
    Kubernetes version, or the file); ``message`` is one line: helm's or the parser's own words.
    """

    kind: str
    input: str
    message: str

    @property
    def label(self) -> str:
        return "nothing to lint" if self.kind == "empty" else f"{self.kind} error"

    def __str__(self) -> str:
        if not self.input or self.message.startswith(self.input):
            return f"{self.label}: {self.message}"
        return f"{self.label}: {self.input}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run checked and what it could not: every formatter reports both, so a run that checked
    nothing never looks clean."""

    errors: tuple[RunError, ...] = ()
    charts: int = 0
    value_sets: int = 0  # per chart: its default values and each profile
    kube_versions: tuple[str, ...] = ()
    renders: int = 0  # successful renders or loaded inputs
    objects: int = 0
    rules: int = 0
    seconds: float = 0.0
    manifests: tuple[str, ...] = ()  # --manifests inputs (file or stdin) instead of charts

    def checked(self) -> str:
        """``checked 3 charts with 14 value sets x 2 Kubernetes versions (1.29, 1.37) = 28 renders: 912 objects,
        31 rules in 4.2s`` (``27 of 28 renders`` when some failed)."""
        versions = f"{_count(len(self.kube_versions), 'Kubernetes version')}"
        versions += f" ({', '.join(self.kube_versions)})" if self.kube_versions else ""
        if self.manifests:
            what = f"{', '.join(self.manifests)} for {versions}"
        else:
            planned = self.value_sets * len(self.kube_versions)
            done = _count(planned, "render") if self.renders == planned else f"{self.renders} of {planned} renders"
            what = (f"{_count(self.charts, 'chart')} with {_count(self.value_sets, 'value set')} (defaults and "
                    f"profiles) x {versions} = {done}")
        return f"checked {what}: {_count(self.objects, 'object')}, {_count(self.rules, 'rule')} in {self.seconds:.1f}s"

    def to_dict(self) -> dict[str, Any]:
        return {"charts": self.charts, "valueSets": self.value_sets, "kubeVersions": list(self.kube_versions),
                "renders": self.renders, "objects": self.objects, "rules": self.rules,
                "seconds": round(self.seconds, 3), "manifests": list(self.manifests)}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
