"""Command line of tools.ctlint: pick the charts the way ct does, run the checks, report one line each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from yamllint.config import YamlLintConfig, YamlLintConfigError

from tools import charts, helm
from tools.ctlint import checks, config, git

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Selection:
    charts: list[Path]
    base: str | None  # merge base to check version increments against; None: no version check
    note: str


def _all_charts(cfg: config.CtConfig) -> list[Path]:
    found: list[Path] = []
    for d in cfg.chart_dirs:
        found += charts.discover(cfg.root / d, include_library=True)
    return [c for c in found if c.name not in cfg.excluded_charts]


def _chart_of(cfg: config.CtConfig, changed: str) -> Path | None:
    parts = Path(changed).parts
    for d in cfg.chart_dirs:
        dparts = Path(d).parts
        if len(parts) > len(dparts) + 1 and parts[: len(dparts)] == dparts:
            chart = cfg.root.joinpath(*parts[: len(dparts) + 1])
            if (chart / "Chart.yaml").is_file() and chart.name not in cfg.excluded_charts:
                return chart
    return None


def select(cfg: config.CtConfig, *, all_charts: bool, names: Sequence[str]) -> Selection:
    """ct's chart selection: explicit charts or --all (no version check), else charts changed since the
    merge base with the target branch; without a merge base (single branch, on the target branch
    itself), every chart, as there is nothing to compare with."""
    if names:
        charts = []
        for n in names:
            chart = (cfg.root / n).resolve()
            if not (chart / "Chart.yaml").is_file():
                raise config.ConfigError(f"--charts: {n} is not a chart directory (no Chart.yaml)")
            charts.append(chart)
        return Selection(charts, None, "charts given with --charts (version increments not checked, as ct)")
    if all_charts:
        return Selection(_all_charts(cfg), None, "--all (version increments not checked, as ct)")
    base = git.merge_base(cfg.root, cfg.remote, cfg.target_branch)
    if base is None:
        return Selection(_all_charts(cfg), None,
                         f"no merge base with {cfg.remote}/{cfg.target_branch} or {cfg.target_branch} other than HEAD: "
                         "linting every chart (version increments need a branch to compare with)")
    changed = git.changed_files(cfg.root, base, list(cfg.chart_dirs))
    charts = sorted({c for f in changed if (c := _chart_of(cfg, f)) is not None})
    base_ref = f"{cfg.target_branch} at {git.short(cfg.root, base)}"
    return Selection(charts, base if cfg.check_version_increment else None,
                     f"charts changed since the merge base with {base_ref}")


def lint_chart(cfg: config.CtConfig, chart: Path, base: str | None, helm_bin: str,
               yl_conf: YamlLintConfig | None, ran: set[str]) -> tuple[list[checks.Finding], list[str]]:
    rel = str(chart.relative_to(cfg.root)) if chart.is_relative_to(cfg.root) else str(chart)
    findings = checks.dependency_build(chart, rel, helm_bin)
    notes: list[str] = []
    if base is not None:
        findings += checks.version_increment(cfg.root, base, chart, rel)
    if cfg.validate_chart_schema and cfg.chart_yaml_schema is not None:
        findings += checks.chart_schema(cfg.chart_yaml_schema, chart, rel)
    if cfg.validate_yaml and yl_conf is not None:
        files = [chart / "Chart.yaml", chart / "values.yaml", *checks.ci_values_files(chart)]
        f, notes = checks.yamllint(yl_conf, files, cfg.root)
        findings += f
    for cmd in cfg.additional_commands:
        # A command without {{ .Path }} covers every chart at once: run it once, not once per chart.
        per_chart = "{{" in cmd
        key = f"{cmd}@{rel}" if per_chart else cmd
        if key in ran:
            continue
        ran.add(key)
        where = rel if per_chart else f"{cfg.path.name} additional-commands (all charts)"
        findings += checks.additional_command(cmd, rel, cfg.root, where)
    findings += checks.helm_lint(chart, rel, cfg.root, helm_bin, cfg.helm_lint_extra_args)
    return findings, notes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.ctlint", description=__doc__)
    p.add_argument("--config", default="ct.yaml", help="chart-testing configuration (default: ct.yaml)")
    p.add_argument("--all", action="store_true", help="lint every chart, not only the changed ones")
    p.add_argument("--charts", default="", help="comma-separated chart directories to lint")
    p.add_argument("--target-branch", default=None, help="override target-branch from the config")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_ERROR
    try:
        cfg_path = Path(args.config).resolve()
        root = git.toplevel(cfg_path.parent if cfg_path.parent.is_dir() else Path.cwd())
        cfg = config.load(cfg_path, root)
        if args.target_branch:
            cfg = replace(cfg, target_branch=args.target_branch)
        if cfg.validate_chart_schema and cfg.chart_yaml_schema is None:
            raise config.ConfigError(f"{cfg_path}: validate-chart-schema is on but no chart-yaml-schema file "
                                     "(chart_schema.yaml) was found: add one or set validate-chart-schema: false")
        yl_conf: YamlLintConfig | None = None
        if cfg.validate_yaml:
            if cfg.lint_conf is None:
                raise config.ConfigError(f"{cfg_path}: validate-yaml is on but no lint-conf file (lintconf.yaml) "
                                         "was found: add one or set validate-yaml: false")
            try:
                yl_conf = checks.load_yamllint_config(cfg.lint_conf)
            except YamlLintConfigError as exc:
                raise config.ConfigError(f"{cfg.lint_conf}: invalid yamllint configuration: {exc}") from exc
        helm_bin = helm.find_helm(4)
        names = [n.strip() for n in args.charts.split(",") if n.strip()]
        sel = select(cfg, all_charts=args.all, names=names)
    except (config.ConfigError, git.GitError, helm.HelmError) as exc:
        print(f"ctlint: {exc}", file=sys.stderr)
        return EXIT_ERROR

    print(f"ctlint: {sel.note}", flush=True)
    if not sel.charts:
        print("ctlint: no chart changes detected")
        return EXIT_OK
    failed = 0
    ran: set[str] = set()
    for chart in sel.charts:
        rel = chart.relative_to(cfg.root) if chart.is_relative_to(cfg.root) else chart
        print(f"ctlint: linting {rel}", flush=True)
        findings, notes = lint_chart(cfg, chart, sel.base, helm_bin, yl_conf, ran)
        for n in notes:
            print(n)
        for f in findings:
            print(str(f), file=sys.stderr)
        failed += bool(findings)
    print(f"ctlint: {len(sel.charts)} chart(s) linted, {failed} failed")
    return EXIT_FINDINGS if failed else EXIT_OK
