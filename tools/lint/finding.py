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
