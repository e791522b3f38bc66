"""``python -m tools.schema [CHART ...] [--check] [--unused]``: see tools/schema/__init__.py."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.schema import CHARTS_DIR
from tools.schema import chart as chart_mod
from tools.schema.errors import ChartError, Problem

EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.schema",
        description="Generate values.schema.json and the README parameter table of each chart from its "
                    "annotated values.yaml (docs/values-annotations.md).",
    )
    p.add_argument("charts", nargs="*", metavar="CHART",
                   help="chart directories (default: every chart under charts/)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 with a diff when a committed schema or README table is stale")
    p.add_argument("--unused", action="store_true",
                   help="also report values keys no template reads and .Values paths values.yaml does not "
                        "define (advisory: it never changes the exit code)")
    p.add_argument("--kube-version", metavar="X.Y.Z", default=None,
                   help="Kubernetes version of the bundled `k8s` definitions (default: the pinned one)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return EXIT_OK if exc.code in (0, None) else EXIT_ERROR
    try:
        return _run(args)
    except ChartError as exc:
        _report(exc.problems)
        return EXIT_ERROR
    except OSError as exc:
        print(f"tools.schema: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("NOVA_DEBUG"):
            raise
        print(f"tools.schema: internal error: {type(exc).__name__}: {exc} (NOVA_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from tools.schema import generate

    if args.charts:
        paths = [Path(c) for c in args.charts]
        missing = [p for p in paths if not chart_mod.is_chart(p)]
        if missing:
            _report([Problem(p, None, "not a chart (no Chart.yaml)") for p in missing])
            return EXIT_ERROR
    else:
        paths = chart_mod.discover(CHARTS_DIR)
        if not paths:
            print(f"tools.schema: no charts under {CHARTS_DIR}", file=sys.stderr)
            return EXIT_ERROR
    session = generate.Session(kube_version=args.kube_version)
    status = EXIT_OK
    printed: set[str] = set()  # a dependency's problems are reported once, even when its parent is named too
    for path in paths:
        try:
            outputs = session.outputs(path)
        except ChartError as exc:
            _report([p for p in exc.problems if str(p) not in printed])
            printed.update(map(str, exc.problems))
            status = EXIT_ERROR
            continue
        for file, new in outputs:
            old = _read(file)
            if old == new:
                continue
            if args.check:
                sys.stdout.writelines(difflib.unified_diff(
                    (old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                    fromfile=f"a/{_rel(file)}" if old is not None else "/dev/null", tofile=f"b/{_rel(file)}"))
                print(f"{_rel(file)} is stale: run `python -m tools.schema` (make schema) and commit it",
                      file=sys.stderr)
                status = max(status, EXIT_STALE)
            else:
                file.write_text(new, encoding="utf-8")
                print(f"wrote {_rel(file)}")
        if args.unused:
            from tools.schema import usage

            sys.stdout.write(usage.render(usage.report(session.built(path))))
    return status


def _read(file: Path) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _report(problems: Sequence[Problem]) -> None:
    for p in problems:
        print(p, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
