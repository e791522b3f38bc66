"""Helpers for the tools.schema tests: fixture charts copied to a temp dir, the CLI run in-process."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.schema.__main__ import main

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    """A temp copy of tests/schema/fixtures (basic, cache, umbrella); tests may edit it freely."""
    dest = tmp_path / "charts"
    shutil.copytree(FIXTURES, dest)
    return dest


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    """Run `python -m tools.schema ARGS` in-process; returns exit code, stdout and stderr."""

    def _run(*args: str | Path) -> Run:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return _run


def load_schema(chart: Path) -> dict[str, Any]:
    return json.loads((chart / "values.schema.json").read_text())


def make_chart(root: Path, name: str, values: str, templates: dict[str, str] | None = None) -> Path:
    """A minimal chart with this values.yaml text (for error cases)."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(values)
    for file, text in (templates or {}).items():
        (chart / "templates" / file).write_text(text)
    return chart
