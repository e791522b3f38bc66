"""Command line of tools.lint: choose inputs, render, lint, print, and pick the exit code.

Exit codes: 0 clean, 1 findings at or above the failing severity, 2 usage, config, input or render
error, or nothing to lint (no objects at all). Errors are one line each on stderr, never a traceback;
a failed render or load is also in the report, in every format, so a run that could not check
something never looks clean. Every report ends with one summary line: what was checked (charts x
value sets x Kubernetes versions, objects, rules) and the time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, TextIO

from tools import charts, helm, kube_versions
from tools.lint import schema
from tools.lint.config import Config, ConfigError, find_config, load_config
from tools.lint.engine import lint
from tools.lint.finding import Finding, RunError, RunInfo, Severity
from tools.lint.formats import FORMATTERS, summary
from tools.lint.inputs import InputError, read_manifests, render_chart
from tools.lint.model import Obj
from tools.lint.rules import RULES


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m tools.lint",
        description="Kubernetes schema and policy checks over rendered manifests. With no input options: every "
                    "chart under charts/ with its default values and every profile, for each --kube-version.",
    )
    src = p.add_argument_group("input (default: every chart and profile)")
    src.add_argument("--chart", metavar="DIR", help="render this chart once (with -f/--set)")
    src.add_argument("-f", "--values", metavar="VALUES", action="append", default=[], help="values file for --chart")
    src.add_argument("--set", metavar="K=V", action="append", default=[], dest="set_values", help="--set for --chart")
    src.add_argument("--manifests", metavar="FILE", help="lint rendered YAML from FILE, or - for stdin")
    p.add_argument("--kube-version", action="append", default=[], metavar="X.Y",
                   help=f"Kubernetes version to render and validate for (repeatable; default "
                        f"{' and '.join(kube_versions.supported())}: the charts' minimum and the newest "
                        f"kubernetes-validate supports, or kube-versions in the config)")
    p.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE instead of stdout (stdout then gets its summary line)")
    p.add_argument("--config", metavar="FILE", help="config file (default: nearest .nova-lint.yaml or pyproject.toml "
                                                    "with [tool.nova-lint])")
    p.add_argument("--no-config", action="store_true", help="ignore config files")
    p.add_argument("--fail-on", choices=[str(s) for s in Severity], help="override fail-on of the config")
    p.add_argument("--helm", metavar="PATH", help="helm binary (default: tools.helm.find_helm())")
    p.add_argument("--namespace", default="default", help="release namespace for renders (default: default)")
    p.add_argument("--release", default="nova", help="release name for renders (default: nova)")
    p.add_argument("--list-rules", action="store_true", help="print the rule ids, severities and descriptions")
    return p


def _kube_versions(args: argparse.Namespace, config: Config) -> list[str]:
    wanted = args.kube_version or list(config.kube_versions) or list(kube_versions.supported())
    out: list[str] = []
    for v in wanted:
        try:
            resolved = schema.resolve_version(str(v))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if resolved not in out:
            out.append(resolved)
    return out


def _renders(args: argparse.Namespace) -> list[tuple[Path, list[str], str]]:
    """(chart, values files, label) for every render the arguments ask for."""
    if args.chart:
        chart = Path(args.chart)
        label = " ".join([str(chart), *(f"-f {v}" for v in args.values), *(f"--set {s}" for s in args.set_values)])
        return [(chart, list(args.values), label)]
    renders = []
    for chart in charts.discover():
        rel = _rel(chart)
        renders.append((chart, [], f"{rel} (default values)"))
        for profile in charts.profiles(chart):
            files = charts.profile_values(profile)  # a user profile with its example site overlay
            renders.append((chart, [str(f) for f in files], " ".join([rel, *(f"-f {_rel(f)}" for f in files)])))
    return renders


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _one_line(text: str) -> str:
    out = ""
    for line in (ln.strip() for ln in str(text).splitlines()):
        if line:
            out += (" " if not out or out.endswith(":") else " | ") + line if out else line
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    out = []
    for f in findings:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _lint_manifests(args: argparse.Namespace, stdin: TextIO, config: Config, versions: list[str],
                    ) -> tuple[list[Finding], list[RunError], int]:
    """Findings, errors and object count of ``--manifests FILE`` (or ``-``)."""
    name = "stdin" if args.manifests == "-" else args.manifests
    try:
        objects = read_manifests(args.manifests, stdin.read() if args.manifests == "-" else None)
    except InputError as exc:
        return [], [RunError("input", name, str(exc))], 0
    findings = lint(objects, config, versions, name)
    if args.manifests != "-":
        findings = [f if f.template else _with_template(f, name) for f in findings]
    return findings, [], len(objects)


def _lint_charts(args: argparse.Namespace, wanted: list[tuple[Path, list[str], str]], config: Config,
                 versions: list[str]) -> tuple[list[Finding], list[RunError], int, int]:
    """Findings, errors, object count and successful renders of every chart x value set x version.

    The helm renders (subprocesses) run in a small thread pool; results are linted in the order of
    ``wanted`` x ``versions``, so the report is the same as a sequential run's."""
    findings: list[Finding] = []
    failed: dict[tuple[str, str], list[str]] = {}  # (input, helm's message) -> versions it failed for
    objects = renders = 0
    jobs: list[tuple[str, str, Future[list[Obj]] | None]] = []  # (label, version or missing input, render)
    _build_dependencies({chart for chart, values, _ in wanted if not _missing_input(chart, values)}, args.helm)
    with ThreadPoolExecutor(max_workers=_render_workers()) as pool:
        for chart, values, label in wanted:
            missing = _missing_input(chart, values)
            if missing:
                jobs.append((label, missing, None))
                continue
            for version in versions:
                jobs.append((label, version, pool.submit(
                    render_chart, chart, values, args.set_values, kube_version=kube_versions.full(version),
                    helm_binary=args.helm, namespace=args.namespace, release=args.release)))
        for label, version, job in jobs:
            if job is None:
                failed.setdefault((label, version), []).append("input")
                continue
            try:
                rendered = job.result()
            except helm.HelmError as exc:
                failed.setdefault((label, _one_line(str(exc))), []).append(version)
                continue
            renders += 1
            objects += len(rendered)
            findings.extend(lint(rendered, config, [version], label))
    errors = [RunError("input", label, message) if vs == ["input"] else
              RunError("render", f"{label} (Kubernetes {', '.join(vs)})", message)
              for (label, message), vs in failed.items()]
    return findings, errors, objects, renders


def _render_workers() -> int:
    """Parallel helm renders: one per CPU this process may use, at most 8 (helm is CPU-bound)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _build_dependencies(wanted: set[Path], helm_binary: str | None) -> None:
    """Build each chart's packaged dependencies once, before the parallel renders (two concurrent
    `helm dependency build` runs of one chart would race on its charts/ folder). A failure is left to
    the renders, which report it per input."""
    for chart in sorted(wanted):
        try:
            helm.dependency_build(chart, helm=helm_binary)
        except helm.HelmError:
            pass


def _missing_input(chart: Path, values: Sequence[str]) -> str | None:
    """What is missing before helm runs at all (the chart or a values file), in one line."""
    if not (chart / "Chart.yaml").is_file():
        return f"{chart}: not a chart (no Chart.yaml)" if chart.is_dir() else f"{chart}: no such chart directory"
    for v in values:
        if not Path(v).is_file():
            return f"values file {v}: no such file"
    return None


def run(argv: Sequence[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    started = time.perf_counter()
    args = build_parser().parse_args(list(argv))
    if args.list_rules:
        stdout.writelines(f"{rule.ID:<28} {rule.SEVERITY!s:<8} {rule.DESCRIPTION}\n" for rule in RULES)
        return 0
    if args.manifests and (args.chart or args.values or args.set_values):
        raise UsageError("--manifests cannot be combined with --chart, -f or --set")
    if (args.values or args.set_values) and not args.chart:
        raise UsageError("-f/--set need --chart DIR")
    if args.chart and helm.is_library(Path(args.chart)):
        stderr.write(f"{args.chart}: a library chart renders nothing, so nothing was linted; its helpers are "
                     "linted through the charts that depend on it\n")
        return 0
    config_path = None if args.no_config else (Path(args.config) if args.config else find_config(Path.cwd()))
    config = load_config(config_path)
    fail_on = Severity.parse(args.fail_on) if args.fail_on else config.fail_on
    versions = _kube_versions(args, config)
    rules = sum(1 for rule in RULES if config.severity(rule) is not None)
    if args.manifests:
        findings, errors, objects = _lint_manifests(args, stdin, config, versions)
        renders = 0 if errors else 1
        chart_count, value_sets, manifests = 0, 0, ("stdin" if args.manifests == "-" else args.manifests,)
    else:
        wanted = _renders(args)
        findings, errors, objects, renders = _lint_charts(args, wanted, config, versions)
        chart_count, value_sets, manifests = len({c for c, _, _ in wanted}), len(wanted), ()
    if not errors and objects == 0:
        what = manifests[0] if manifests else "the renders"
        errors.append(RunError("empty", "", f"{what} had no Kubernetes objects"))
    findings = _dedupe(findings)
    info = RunInfo(tuple(errors), chart_count, value_sets, tuple(versions), renders, objects, rules,
                   time.perf_counter() - started, manifests)
    report = FORMATTERS[args.format](findings, fail_on, info)
    if args.output:
        Path(args.output).write_text(report)
        stdout.write(summary(findings, fail_on, info) + "\n")
    else:
        stdout.write(report)
    stderr.writelines(f"{e}\n" for e in errors)
    if errors:
        return 2
    return 1 if any(f.severity >= fail_on for f in findings) else 0


def _with_template(f: Finding, name: str) -> Finding:
    from dataclasses import replace
    return replace(f, template=name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m tools.lint``; returns the exit code."""
    try:
        return run(sys.argv[1:] if argv is None else argv, sys.stdin, sys.stdout, sys.stderr)
    except UsageError as exc:
        sys.stderr.write(f"usage error: {exc} (see python -m tools.lint --help)\n")
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
    except helm.HelmError as exc:
        sys.stderr.write(f"render error: {_one_line(str(exc))}\n")
    except SystemExit as exc:  # --help and --version: argparse has printed what was asked
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback
        sys.stderr.write(f"internal error: {type(exc).__name__}: {_one_line(str(exc))}\n")
    return 2
