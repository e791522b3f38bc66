"""Command line of tools.package: package the application charts into dist/, push them to an OCI registry.

    python -m tools.package [CHART ...] [--out dist]          # every application chart by default
    python -m tools.package push oci://ghcr.io/OWNER/charts [--dist dist] [--plain-http]

Each chart is copied to a temporary directory with its symlinked dependencies resolved, its Chart.yaml
gets ``artifacthub.io/changes`` from CHANGELOG.md (the entries ``- <chart> <version>: ...``), and
``helm package`` writes ``<out>/<name>-<version>.tgz``. ``push`` pushes those archives and skips a
version the registry already has (a published version is never overwritten).

Exit codes: 0 done, 1 a chart cannot be packaged or pushed as it is (one line each, naming the chart and
the fix), 2 usage, Chart.yaml or helm error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from tools import helm
from tools.package import changelog
from tools.package.charts import Chart, ChartError, dependency_findings, discover, load, show, stray_archives

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
CHANGES_KEY = "artifacthub.io/changes"


def _parser(prog: str, push: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0] if __doc__ else None)
    if push:
        p.add_argument("registry", help="oci://HOST/PATH the charts go to, e.g. oci://ghcr.io/OWNER/charts")
        p.add_argument("--dist", type=Path, default=Path("dist"), help="where `make package` wrote the archives")
        p.add_argument("--plain-http", action="store_true", help="HTTP instead of HTTPS (a loopback test registry)")
    else:
        p.add_argument("--out", type=Path, default=Path("dist"), help="directory for the .tgz files (default dist)")
        p.add_argument("--changelog", type=Path, default=helm.REPO_ROOT / "CHANGELOG.md",
                       help="changelog read for artifacthub.io/changes")
    p.add_argument("charts", nargs="*", help="chart names or directories (default: every application chart)")
    p.add_argument("--charts-dir", type=Path, default=helm.CHARTS_DIR, help="where charts/*/Chart.yaml are found")
    return p


def select(charts_dir: Path, names: Sequence[str]) -> tuple[list[Chart], list[str]]:
    """The application charts to work on, and one finding per name that is not one."""
    found = discover(charts_dir)
    if not names:
        return [c for c in found if not c.library], []
    by_name = {c.name: c for c in found} | {c.path.name: c for c in found}
    chosen, findings = [], []
    for n in names:
        chart = by_name.get(n) or (load(Path(n)) if (Path(n) / "Chart.yaml").is_file() else None)
        if chart is None:
            findings.append(f"{n}: no such chart under {show(charts_dir)}/ (charts: {', '.join(sorted(by_name))})")
        elif chart.library:
            findings.append(f"{show(chart.path)}: {chart.name} is a library chart: it is bundled inside the charts "
                            "that depend on it, never packaged alone")
        else:
            chosen.append(chart)
    return chosen, findings


def changes_finding(chart: Chart, text: str, changelog_path: Path) -> list[str]:
    if changelog.changes_for(text, chart.name, chart.version):
        return []
    return [(f"{show(chart.path)}: {show(changelog_path)} has no entry `- {chart.name} {chart.version}: ...` for "
             f"its version: add one under `## Unreleased` (it becomes {CHANGES_KEY})")]


def stage(chart: Chart, into: Path, changes: list[str]) -> Path:
    """A copy of the chart with its symlinked dependencies resolved (packaged copies next to them left out)
    and the changes annotation set."""
    staged = into / chart.name
    shutil.copytree(chart.path, staged, symlinks=False, ignore=stray_archives)
    meta = dict(chart.meta)
    meta["annotations"] = {**(meta.get("annotations") or {}), CHANGES_KEY: changelog.annotation(changes)}
    (staged / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=10**6, allow_unicode=True))
    return staged


def package_one(chart: Chart, out: Path, changes: list[str], helm_bin: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"package-{chart.name}-") as tmp:
        staged = stage(chart, Path(tmp), changes)
        helm.run(["package", str(staged), "--destination", str(out.resolve())], helm=helm_bin,
                 context=f"chart {show(chart.path)}")
    archive = out / chart.archive
    if not archive.is_file():
        raise helm.HelmError(f"{show(chart.path)}: helm package did not write {show(archive)}")
    return archive


def _bundled(chart: Chart) -> str:
    parts = []
    for dep in chart.dependencies:
        slot = chart.path / "charts" / dep.name
        if slot.is_dir():
            parts.append(f"{dep.name} {load(slot).version}")
    return ", ".join(parts) or "no dependencies"


def run_package(args: argparse.Namespace) -> int:
    charts, findings = select(args.charts_dir, args.charts)
    try:
        text = args.changelog.read_text()
    except OSError as exc:
        print(f"{show(args.changelog)}: cannot read the changelog ({exc.strerror})", file=sys.stderr)
        return EXIT_ERROR
    for chart in charts:
        findings += dependency_findings(chart) + changes_finding(chart, text, args.changelog)
    if findings or not charts:
        for f in findings or [f"{show(args.charts_dir)}: no application chart (*/Chart.yaml) to package"]:
            print(f, file=sys.stderr)
        return EXIT_FINDINGS
    helm_bin = helm.find_helm()
    for chart in charts:
        changes = changelog.changes_for(text, chart.name, chart.version)
        archive = package_one(chart, args.out, changes, helm_bin)
        print(f"{show(archive)}: {chart.name} {chart.version} (bundles {_bundled(chart)}; "
              f"{len(changes)} changes from {show(args.changelog)})")
    return EXIT_OK


# What helm reports when a registry has no such chart version. GHCR answers a package that does not exist
# yet with 403 "denied" (it cannot tell it from a private one); a token that really may not read it may not
# push it either, so the push that follows fails with helm's own message.
ABSENT = ("not found", "manifest unknown", "name unknown", "denied", "status code 403", "403 forbidden")


def published(ref: str, chart: Chart, helm_bin: str, plain_http: bool) -> bool:
    """Whether the registry already has this chart version."""
    args = ["show", "chart", f"{ref}/{chart.name}", "--version", chart.version, *(["--plain-http"] * plain_http)]
    try:
        helm.run(args, helm=helm_bin, context=f"{ref}/{chart.name}:{chart.version}")
    except helm.HelmError as exc:
        if any(marker in str(exc).lower() for marker in ABSENT):
            return False
        raise
    return True


def run_push(args: argparse.Namespace) -> int:
    ref = args.registry.rstrip("/")
    if not ref.startswith("oci://"):
        print(f"{args.registry}: the registry must be an oci:// reference, e.g. oci://ghcr.io/OWNER/charts",
              file=sys.stderr)
        return EXIT_ERROR
    charts, findings = select(args.charts_dir, args.charts)
    findings += [f"{show(args.dist / c.archive)}: missing (run `make package` first)"
                 for c in charts if not (args.dist / c.archive).is_file()]
    if findings:
        for f in findings:
            print(f, file=sys.stderr)
        return EXIT_FINDINGS
    helm_bin = helm.find_helm()
    for chart in charts:
        if published(ref, chart, helm_bin, args.plain_http):
            print(f"{ref}/{chart.name}:{chart.version}: already published, not overwritten (bump the chart "
                  "version to publish a change)")
            continue
        helm.run(["push", str(args.dist / chart.archive), ref, *(["--plain-http"] * args.plain_http)],
                 helm=helm_bin, context=f"{show(args.dist / chart.archive)} to {ref}")
        print(f"{ref}/{chart.name}:{chart.version}: pushed {show(args.dist / chart.archive)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    push = argv[:1] == ["push"]
    parser = _parser("python -m tools.package" + (" push" if push else ""), push)
    try:
        args = parser.parse_args(argv[1:] if push else argv)
    except SystemExit as exc:  # usage error (2) or --help (0): a return code, as every tool's main
        return int(exc.code or 0)
    try:
        return run_push(args) if push else run_package(args)
    except (ChartError, helm.HelmError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
