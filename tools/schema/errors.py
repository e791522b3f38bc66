"""Errors that ``tools.schema`` reports to the user: one line each, ``file:line: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """A problem in a chart's input (values.yaml, an annotation, Chart.yaml): exit code 2."""

    file: Path
    line: int | None  # 1-based; None when the problem has no line
    message: str

    def __str__(self) -> str:
        where = f"{_display(self.file)}:{self.line}" if self.line else _display(self.file)
        return f"{where}: {self.message}"


class ChartError(Exception):
    """One or more problems that stop a chart's generation."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
