"""Helpers for the lint tests: run the CLI in-process and load fixtures."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lint.cases import BASELINE, FIXTURES, case_file
from tools.lint import cli

__all__ = ["BASELINE", "DEMO_CHART", "FIXTURES", "Result", "case_file", "run_lint"]
DEMO_CHART = Path(__file__).parent / "charts" / "demo"


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_lint(argv: Sequence[str], stdin: str = "") -> Result:
    """``python -m tools.lint ARGV`` in-process (through main(), so errors are handled as for users)."""
    out, err = io.StringIO(), io.StringIO()
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr("sys.stdin", io.StringIO(stdin))
        mp.setattr("sys.stdout", out)
        mp.setattr("sys.stderr", err)
        code = cli.main(list(argv))
    finally:
        mp.undo()
    return Result(code, out.getvalue(), err.getvalue())

