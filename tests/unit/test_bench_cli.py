"""bench/: every benchmark's last printed line is one JSON object, on errors too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.helm import REPO_ROOT


@pytest.mark.parametrize(("script", "args"), [("schema.py", ["--runs", "0"]), ("lint.py", ["--runs", "0"]),
                                                ("suite.py", ["--runs", "0"]), ("restore.py", ["--size-mb", "0"])])
def test_a_benchmark_that_cannot_run_says_why_in_its_last_json_line(script: str, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *args],
                          capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    assert proc.returncode == 2
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["error"] == proc.stderr.strip().splitlines()[-1] and "at least 1" in last["error"]


@pytest.mark.parametrize(("backend", "runs", "minimum"), [("redis", "0", "at least 1"), ("postgres", "2", "at least 3")])
def test_a_failover_bench_refusing_its_run_count_says_why_in_its_last_json_line_and_starts_nothing(
        backend: str, runs: str, minimum: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "failover.py"), backend, "--runs", runs],
                          capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 2
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["backend"] == backend and last["kills"] == 0
    assert minimum in last["error"] and last["error"] in proc.stderr


def test_the_suite_bench_reads_pytest_counts_from_its_last_summary_line() -> None:
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import suite

    out = "....F\n=== short test summary ===\nFAILED t.py::x\n1 failed, 1220 passed, 12 skipped, 2 errors in 81.0s\n"
    assert suite.pytest_counts(out) == {"failed": 1, "passed": 1220, "skipped": 12, "errors": 2}
    assert suite.pytest_counts("make: *** [Makefile:14: test] Error 1\n") == {}
