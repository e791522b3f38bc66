"""``python -m tools.cluster <verb>``: a Kind cluster and the Nova release on it.

Verbs: up, deploy, status, logs [component], test, cleanup, down. ``--dry-run`` prints a verb's plan
(the commands, in order) without running anything. Exit codes: 0 done, 1 a step failed,
2 usage error, missing tool, no reachable cluster, or a chart that does not render.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from tools import helm
from tools.cluster import inventory, plan, runner

ROOT = helm.REPO_ROOT
VERBS = ("up", "deploy", "status", "logs", "test", "cleanup", "down")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("verb", choices=VERBS)
    p.add_argument("component", nargs="?", help="logs: a component (redis, postgres, user-service, ...) or phase")
    p.add_argument("-f", "--values", action="append", help="values file(s) (default: values/local.yaml)")
    p.add_argument("--chart", default=str(ROOT / "charts" / "nova"), help="chart directory (default: charts/nova)")
    p.add_argument("--release", default="nova")
    p.add_argument("-n", "--namespace", default="nova", help="release namespace (default: nova)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    p.add_argument("--timeout", default="900s", help="per wait and for helm (default: 900s)")
    p.add_argument("--cluster-name", default="nova", help="Kind cluster name (default: nova)")
    p.add_argument("--node-image", default=None, help="up: kindest/node image (default: kind's own)")
    p.add_argument("--tail", type=int, default=200, help="logs: lines per container")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    return p


def settings(args: argparse.Namespace, helm_bin: str) -> plan.Settings:
    values = tuple(args.values or [str(ROOT / "values" / "local.yaml")])
    return plan.Settings(
        helm=helm_bin, python=sys.executable, cluster_name=args.cluster_name,
        kind_config=str(ROOT / "kind" / "cluster.yaml"), node_image=args.node_image, release=args.release,
        namespace=args.namespace, chart=args.chart, values=values, timeout=args.timeout,
        context=args.context, tests_dir=str(ROOT / "tests" / "cluster"),
        # one client pod per run: a second `status` never reuses (or deletes) another run's pod
        client_suffix=f"cluster-client-{secrets.token_hex(3)}",
    )


def render_inventory(s: plan.Settings) -> inventory.Inventory:
    """Render charts/nova with the given values (the same objects helm will install)."""
    try:
        objects = helm.render(s.chart, list(s.values), helm=s.helm, release=s.release, namespace=s.namespace)
    except helm.HelmError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise UsageError(f"cannot render {plan.relative(Path(s.chart), ROOT)}: {' '.join(lines)[:400]}") from exc
    except OSError as exc:
        raise UsageError(f"cannot render {s.chart}: {exc}") from exc
    return inventory.build(objects, s.release, s.namespace)


def _find_helm(dry_run: bool) -> str:
    try:
        return helm.find_helm(4)
    except helm.HelmError as exc:
        if dry_run:
            return "helm"
        raise runner.PrerequisiteError(str(exc)) from exc


def build_plan(args: argparse.Namespace, extra: Sequence[str]) -> tuple[plan.Settings, list[plan.Step]]:
    """Check prerequisites (unless --dry-run) and return the verb's plan."""
    s = settings(args, _find_helm(args.dry_run or args.verb in ("up", "down")))
    check = not args.dry_run
    if args.verb in ("up", "down"):
        if check:
            runner.require([("docker", "docker"), ("kind", s.kind)] + ([("kubectl", s.kubectl)] if args.verb == "up" else []))
            runner.docker_running()
        if args.verb == "down":
            return s, plan.plan_down(s)
        return s, plan.plan_up(s, runner.kind_clusters(s.kind) if check else [])
    if check:
        runner.require([("kubectl", s.kubectl), ("helm", s.helm)])
        runner.cluster_reachable(s)
    for v in s.values:
        if not Path(v).is_file():
            raise UsageError(f"values file {v} does not exist: pass an existing file with -f")
    if args.verb == "test":
        return s, plan.plan_test(s, tuple(extra))
    inv = render_inventory(s)
    if args.verb == "deploy":
        return s, plan.plan_deploy(s, inv)
    if args.verb == "status":
        return s, plan.plan_status(s, inv)
    if args.verb == "cleanup":
        return s, plan.plan_cleanup(s, inv)
    try:
        return s, plan.plan_logs(s, inv, args.component, args.tail)
    except plan.UnknownComponent as exc:
        raise UsageError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # test: the rest goes to pytest
        extra = argv[argv.index("--") + 1:]
        argv = argv[: argv.index("--")]
    try:
        args = _parser().parse_intermixed_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    if args.component and args.verb != "logs":
        print(f"cluster: '{args.verb}' takes no component (only logs does)", file=sys.stderr)
        return EXIT_USAGE
    try:
        _, steps = build_plan(args, extra)
    except (runner.PrerequisiteError, UsageError) as exc:
        print(f"cluster {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        for step in steps:
            print(step)
        return EXIT_OK
    return runner.execute(steps, f"cluster {args.verb}")
