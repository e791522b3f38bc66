"""Command line of tools.lint: choose inputs, render, lint, print, and pick the exit code.

Exit codes: 0 clean, 1 findings at or above the failing severity, 2 usage, config, input or render
error. Errors are one line each on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from tools import helm
from tools.lint import schema
from tools.lint.config import Config, ConfigError, find_config, load_config
from tools.lint.engine import lint
from tools.lint.finding import Finding, Severity
from tools.lint.formats import FORMATTERS
from tools.lint.inputs import InputError, read_manifests, render_chart
from tools.lint.rules import RULES

DEFAULT_KUBE_VERSION = "1.29"


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
                   help=f"Kubernetes version to render and validate for (repeatable; default {DEFAULT_KUBE_VERSION} "
                        f"and the newest kubernetes-validate supports, or kube-versions in the config)")
    p.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
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
    wanted = args.kube_version or list(config.kube_versions) or [DEFAULT_KUBE_VERSION, schema.newest_version()]
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
    for chart in (c for c in helm.charts() if not helm.is_library(c)):
        rel = _rel(chart)
        renders.append((chart, [], f"{rel} (default values)"))
        for profile in helm.profiles(chart):
            renders.append((chart, [str(profile)], f"{rel} -f {_rel(profile)}"))
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


def run(argv: Sequence[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
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
    findings: list[Finding] = []
    errors: list[str] = []
    if args.manifests:
        objects = read_manifests(args.manifests, stdin.read() if args.manifests == "-" else None)
        name = "stdin" if args.manifests == "-" else args.manifests
        findings = lint(objects, config, versions, name)
        if args.manifests != "-":
            findings = [f if f.template else _with_template(f, name) for f in findings]
    else:
        for chart, values, label in _renders(args):
            for version in versions:
                try:
                    objects = render_chart(chart, values, args.set_values, kube_version=f"{version}.0",
                                           helm_binary=args.helm, namespace=args.namespace, release=args.release)
                except helm.HelmError as exc:
                    errors.append(f"render error: {label} (Kubernetes {version}): {_one_line(str(exc))}")
                    continue
                findings.extend(lint(objects, config, [version], label))
    findings = _dedupe(findings)
    report = FORMATTERS[args.format](findings, fail_on)
    if args.output:
        Path(args.output).write_text(report)
    else:
        stdout.write(report)
    stderr.writelines(f"error: {message}\n" for message in errors)
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
    except InputError as exc:
        sys.stderr.write(f"input error: {exc}\n")
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
