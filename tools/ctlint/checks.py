"""The per-chart checks of ``ct lint``. Each returns findings; none of them raises for a chart problem."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yamale
import yaml
from yamllint import linter as yamllint_linter
from yamllint.config import YamlLintConfig

from tools import charts, helm
from tools.ctlint import git, semver


@dataclass(frozen=True)
class Finding:
    """One problem: the file it is about, the check that found it, and a one-line message."""

    file: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.check}] {self.message}"


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines) if lines else "(no output)"


def ci_values_files(chart: Path) -> list[Path]:
    """``ci/*-values.yaml``: the scenarios ct lints and installs (the rule lives in tools.charts)."""
    return charts.install_profiles(chart)


def dependency_build(chart: Path, rel: str, helm_bin: str) -> list[Finding]:
    try:
        helm.dependency_build(chart, helm=helm_bin)
    except helm.HelmError as exc:
        return [Finding(f"{rel}/Chart.yaml", "dependencies", _one_line(str(exc)))]
    except OSError as exc:  # a file:// dependency that does not exist
        return [Finding(f"{rel}/Chart.yaml", "dependencies",
                        f"cannot read a local dependency: {exc.strerror}: {exc.filename}: fix its repository: file://")]
    return []


def version_increment(root: Path, base: str, chart: Path, rel: str) -> list[Finding]:
    """The chart changed since ``base``: its version must be greater than the one at ``base``."""
    where = f"{rel}/Chart.yaml"
    old_text = git.show(root, base, where)
    if old_text is None:
        return []  # a new chart: nothing to compare with
    try:
        old_raw = (yaml.safe_load(old_text) or {}).get("version")
        new_raw = (yaml.safe_load((chart / "Chart.yaml").read_text()) or {}).get("version")
    except yaml.YAMLError as exc:
        return [Finding(where, "version-increment", f"cannot read Chart.yaml: {_one_line(str(exc))}")]
    try:
        new = semver.parse(new_raw)
    except semver.SemverError as exc:
        return [Finding(where, "version-increment", f"version: {exc}")]
    try:
        old = semver.parse(old_raw)
    except semver.SemverError:
        return []  # the old version was not semver: any valid version is an improvement
    if new <= old:
        return [Finding(where, "version-increment",
                        f"version {new_raw} is not greater than {old_raw} at the merge base "
                        f"{git.short(root, base)}: the chart changed, bump its version (semver)")]
    return []


def chart_schema(schema_file: Path, chart: Path, rel: str) -> list[Finding]:
    where = f"{rel}/Chart.yaml"
    try:
        schema = yamale.make_schema(str(schema_file), parser="PyYAML")
        data = yamale.make_data(str(chart / "Chart.yaml"), parser="PyYAML")
    except (yaml.YAMLError, SyntaxError, ValueError) as exc:
        return [Finding(where, "chart-schema", f"cannot read: {_one_line(str(exc))}")]
    try:
        yamale.validate(schema, data, strict=True)
    except yamale.YamaleError as exc:
        return [Finding(where, "chart-schema", f"{err} (schema {schema_file.name})")
                for result in exc.results for err in result.errors]
    return []


def load_yamllint_config(conf_file: Path) -> YamlLintConfig:
    """Raises YamlLintConfigError for an invalid configuration (a ct.yaml problem, not a chart's)."""
    return YamlLintConfig(file=str(conf_file))


def yamllint(conf: YamlLintConfig, files: Sequence[Path], root: Path) -> tuple[list[Finding], list[str]]:
    """yamllint errors as findings; warnings as notes (yamllint, and so ct, passes on warnings)."""
    findings: list[Finding] = []
    warnings: list[str] = []
    for f in files:
        rel = str(f.relative_to(root)) if f.is_relative_to(root) else str(f)
        if not f.is_file():
            continue
        for p in yamllint_linter.run(f.read_text(), conf, str(f)):
            text = f"{rel}:{p.line}:{p.column}: {p.desc} ({p.rule or 'syntax'})"
            if p.level == "error":
                findings.append(Finding(f"{rel}:{p.line}:{p.column}", "yamllint", f"{p.desc} ({p.rule or 'syntax'})"))
            else:
                warnings.append(f"warning: {text}")
    return findings, warnings


def command_argv(template: str, chart_rel: str) -> list[str]:
    """An additional command with ct's ``{{ .Path }}`` rendered. A leading ``python``/``python3`` is this
    interpreter, so our tools run with the project's venv even where no ``python`` is on PATH."""
    rendered = template.replace("{{ .Path }}", chart_rel).replace("{{.Path}}", chart_rel)
    argv = shlex.split(rendered)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def additional_command(template: str, chart_rel: str, root: Path, where: str) -> list[Finding]:
    """Run one of ct.yaml's additional-commands; ``where`` is what a failure is reported against."""
    argv = command_argv(template, chart_rel)
    if not argv:
        return []
    shown = template.replace("{{ .Path }}", chart_rel).replace("{{.Path}}", chart_rel)
    sys.stdout.flush()
    try:
        proc = subprocess.run(argv, cwd=root, check=False)
    except OSError as exc:
        return [Finding(where, "additional-command", f"cannot run `{shown}`: {exc}")]
    if proc.returncode != 0:
        return [Finding(where, "additional-command",
                        f"`{shown}` failed with exit code {proc.returncode} (its output is above)")]
    return []


def _template_error(chart: Path, values: Path | None, helm_bin: str) -> str | None:
    """helm lint prints its [ERROR] lines on stdout, which a failed ``helm.run`` does not keep;
    helm template reports the same render errors on stderr, so ask it for the detail."""
    try:
        helm.run(helm.template_args(chart, [values] if values else []), helm=helm_bin)
    except helm.HelmError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        return " ".join(lines) or None
    return None


def helm_lint(chart: Path, rel: str, root: Path, helm_bin: str, extra_args: Sequence[str] = ()) -> list[Finding]:
    findings: list[Finding] = []
    scenarios: list[Path | None] = list(ci_values_files(chart)) or [None]
    for values in scenarios:
        args = ["lint", str(chart), *(["--values", str(values)] if values else []), *extra_args]
        label = str(values.relative_to(root)) if values and values.is_relative_to(root) else (str(values) if values else rel)
        try:
            helm.run(args, helm=helm_bin, context=f"chart {rel}")
        except helm.HelmError as exc:
            detail = _template_error(chart, values, helm_bin)
            msg = detail or (_one_line(str(exc).split(":", 1)[-1])
                             + f"; run `helm lint {rel}" + (f" -f {label}`" if values else "`") + " for details")
            findings.append(Finding(label, "helm-lint", msg))
    return findings
