"""Each verb as a plan: the list of commands it runs, in order, computed without touching a cluster.

A plan is data (``Step``s); :mod:`tools.cluster.runner` executes it. Unit tests check the plans.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.inventory import PHASE_TITLES, PHASES, SYSTEM_NAMESPACES, Inventory, Workload


@dataclass(frozen=True)
class Settings:
    """Everything a plan depends on besides the rendered chart."""

    kubectl: str = "kubectl"
    helm: str = "helm"
    kind: str = "kind"
    python: str = "python"
    cluster_name: str = "nova"
    kind_config: str = "kind/cluster.yaml"
    node_image: str | None = None
    release: str = "nova"
    namespace: str = "nova"
    chart: str = "charts/nova"
    values: tuple[str, ...] = ("values/local.yaml",)
    timeout: str = "900s"
    context: str | None = None
    tests_dir: str = "tests/cluster"

    def kubectl_argv(self, *args: str) -> tuple[str, ...]:
        return (self.kubectl, *(("--context", self.context) if self.context else ()), *args)

    def helm_argv(self, *args: str) -> tuple[str, ...]:
        return (self.helm, *args, *(("--kube-context", self.context) if self.context else ()))


@dataclass(frozen=True)
class Step:
    """One command (or, with no argv, a line to print).

    ``capture``: keep stdout under this name instead of printing it; ``stdin_from``: feed a captured value
    on stdin (so a password never appears on a command line); ``optional``: a failure is reported, not fatal.
    """

    title: str
    argv: tuple[str, ...] = ()
    capture: str | None = None
    stdin_from: str | None = None
    stdin: str | None = None
    optional: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_note(self) -> bool:
        return not self.argv

    def __str__(self) -> str:
        if self.is_note:
            return f"# {self.title}"
        cmd = shlex.join(self.argv)
        if self.stdin_from:
            cmd += f"  < ${self.stdin_from}"
        return cmd


def note(text: str) -> Step:
    return Step(title=text)


# --- up / down ---------------------------------------------------------------------------------------

def plan_up(s: Settings, existing_clusters: list[str]) -> list[Step]:
    steps: list[Step] = []
    if s.cluster_name in existing_clusters:
        steps.append(note(f"Kind cluster '{s.cluster_name}' already exists: using it"))
    else:
        argv = [s.kind, "create", "cluster", "--name", s.cluster_name, "--config", s.kind_config, "--wait", "180s"]
        if s.node_image:
            argv += ["--image", s.node_image]
        steps.append(Step(f"create Kind cluster '{s.cluster_name}' (1 control plane, 3 workers)", tuple(argv)))
    ctx = f"kind-{s.cluster_name}"
    steps += [
        Step("wait for every node to be Ready",
             (s.kubectl, "--context", ctx, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s")),
        Step("nodes", (s.kubectl, "--context", ctx, "get", "nodes", "-L", "topology.kubernetes.io/zone")),
        note("next: make deploy   (python -m tools.cluster deploy)"),
    ]
    return steps


def plan_down(s: Settings) -> list[Step]:
    return [Step(f"delete Kind cluster '{s.cluster_name}'", (s.kind, "delete", "cluster", "--name", s.cluster_name))]


# --- deploy ----------------------------------------------------------------------------------------------

def _namespace_manifest(names: list[str]) -> str:
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n" for n in names]
    return "---\n".join(docs)


def wait_step(s: Settings, w: Workload, phase_title: str) -> Step:
    return Step(
        f"[{phase_title}] waiting for {w.kind} {w.namespace}/{w.name} ({w.replicas} ready)",
        s.kubectl_argv("rollout", "status", w.ref, "-n", w.namespace, f"--timeout={s.timeout}"),
    )


def _redis_cli(s: Settings, inv: Inventory, w: Workload, container: str, command: str, title: str) -> list[Step]:
    """redis-cli in a container: with the container's own REDISCLI_AUTH when it has one, else the password
    read from the Secret and passed on stdin (never on a command line)."""
    pod = f"{w.name}-0"
    if "REDISCLI_AUTH" in w.container_env_names(container):
        return [Step(title, s.kubectl_argv("exec", "-n", w.namespace, pod, "-c", container, "--",
                                           "sh", "-c", f"redis-cli --no-auth-warning {command}"), optional=True)]
    secret = inv.redis_password_secret()
    if not secret:
        return [Step(title, s.kubectl_argv("exec", "-n", w.namespace, pod, "-c", container, "--",
                                           "sh", "-c", f"redis-cli {command}"), optional=True)]
    name, key = secret
    return [
        Step(f"read the Redis password from Secret {w.namespace}/{name}",
             s.kubectl_argv("get", "secret", name, "-n", w.namespace, "-o",
                            f'go-template={{{{index .data "{key}" | base64decode}}}}'),
             capture="redis_password", optional=True),
        Step(title, s.kubectl_argv("exec", "-i", "-n", w.namespace, pod, "-c", container, "--",
                                   "sh", "-c", f'REDISCLI_AUTH="$(cat)" redis-cli --no-auth-warning {command}'),
             stdin_from="redis_password", optional=True),
    ]


def redis_master_steps(s: Settings, inv: Inventory) -> list[Step]:
    """Ask Sentinel for the current master, then ask the write-safe endpoint which role it reaches."""
    w = inv.redis
    if w is None:
        return []
    sentinel = w.container_with_port("sentinel", 26379) or w.containers[0]
    redis = w.container_with_port("redis", 6379) or w.containers[0]
    steps = _redis_cli(s, inv, w, sentinel,
                       f"-p 26379 SENTINEL get-master-addr-by-name {shlex.quote(inv.master_set)}",
                       f"Redis master according to Sentinel ({w.name}-0, master set '{inv.master_set}')")
    master = inv.service("-master", "redis")
    if master:
        more = _redis_cli(s, inv, w, redis, f"-h {master.name}.{master.namespace}.svc -p {master.port} ROLE",
                          f"role behind the write-safe endpoint {master.namespace}/{master.name} (expect master)")
        steps += [st for st in more if st.capture is None or st.capture not in {x.capture for x in steps}]
    return steps


def _endpoint_pods(s: Settings, namespace: str, service: str, what: str) -> Step:
    return Step(f"pods behind the {what} Service {namespace}/{service}",
                s.kubectl_argv("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}",
                               "-o", "jsonpath={range .items[*].endpoints[*]}{.targetRef.name} {.conditions.ready}{\"\\n\"}{end}"),
                optional=True)


def postgres_leader_steps(s: Settings, inv: Inventory) -> list[Step]:
    w = inv.postgres
    if w is None:
        return []
    steps = [Step(f"PostgreSQL leader (pods labelled {inv.role_label}=primary by Patroni)",
                  s.kubectl_argv("get", "pods", "-n", w.namespace, "-l", f"{w.selector_arg},{inv.role_label}=primary",
                                 "-o", "name"), optional=True)]
    patroni = w.container_with_port("patroni", 8008) or w.containers[0]
    steps.append(Step("Patroni cluster members (patronictl list)",
                      s.kubectl_argv("exec", "-n", w.namespace, f"{w.name}-0", "-c", patroni, "--",
                                     "sh", "-c", 'patronictl -c "${PATRONICTL_CONFIG_FILE:-/etc/patroni/patroni.yml}" list'),
                      optional=True))
    primary = inv.service("-primary", "postgresql")
    if primary:
        steps.append(_endpoint_pods(s, primary.namespace, primary.name, "read-write"))
    return steps


def port_forward_notes(s: Settings, inv: Inventory) -> list[Step]:
    lines = [note("addresses (port-forward, then connect to localhost):")]
    seen: set[tuple[str, str]] = set()
    for sp in inv.services:
        if (sp.namespace, sp.name) in seen:
            continue
        seen.add((sp.namespace, sp.name))
        ctx = f" --context {s.context}" if s.context else ""
        lines.append(note(f"  kubectl{ctx} port-forward -n {sp.namespace} svc/{sp.name} {sp.port}:{sp.port}"))
    return lines


def plan_deploy(s: Settings, inv: Inventory) -> list[Step]:
    values = " ".join(f"-f {v}" for v in s.values)
    steps = [note(f"deploying release '{s.release}' ({s.chart} {values}) to namespace {s.namespace}")]
    extra = [n for n in inv.namespaces
             if n != s.namespace and n not in inv.rendered_namespaces and n not in SYSTEM_NAMESPACES]
    if extra:
        steps.append(Step(f"create namespaces {', '.join(extra)}", s.kubectl_argv("apply", "-f", "-"),
                          stdin=_namespace_manifest(extra)))
    helm_args = ["upgrade", "--install", s.release, s.chart, "--namespace", s.namespace, "--create-namespace"]
    for v in s.values:
        helm_args += ["-f", v]
    helm_args += ["--timeout", s.timeout]
    steps.append(Step(f"helm upgrade --install {s.release}", s.helm_argv(*helm_args)))
    for i, phase in enumerate(PHASES, 1):
        title = f"{i}/{len(PHASES)} {PHASE_TITLES[phase]}"
        workloads = inv.phase(phase)
        if not workloads:
            steps.append(note(f"[{title}] nothing to wait for (disabled in these values)"))
            continue
        steps += [wait_step(s, w, title) for w in workloads]
        if phase == "redis":
            steps += redis_master_steps(s, inv)
        elif phase == "postgresql":
            steps += postgres_leader_steps(s, inv)
        steps.append(note(f"[{title}] ready"))
    steps += port_forward_notes(s, inv)
    steps += [note("common commands:"),
              note("  python -m tools.cluster status          # pods, ready counts, Redis master, PostgreSQL leader"),
              note("  python -m tools.cluster logs [component] # e.g. redis, postgres, user-service"),
              note("  python -m tools.cluster test            # helm test, then the cluster tests"),
              note("  python -m tools.cluster cleanup         # uninstall and delete the namespaces")]
    return steps


# --- status / logs ------------------------------------------------------------------------------------

def plan_status(s: Settings, inv: Inventory) -> list[Step]:
    steps = [Step(f"release {s.release}", s.helm_argv("status", s.release, "--namespace", s.namespace), optional=True)]
    for phase in PHASES:
        for w in inv.phase(phase):
            steps.append(Step(f"[{w.component}] {w.kind} {w.namespace}/{w.name}: ready counts",
                              s.kubectl_argv("get", w.ref, "-n", w.namespace), optional=True))
            steps.append(Step(f"[{w.component}] pods",
                              s.kubectl_argv("get", "pods", "-n", w.namespace, "-l", w.selector_arg, "-o", "wide"),
                              optional=True))
        if phase == "redis":
            steps += redis_master_steps(s, inv)
        elif phase == "postgresql":
            steps += postgres_leader_steps(s, inv)
    return steps + port_forward_notes(s, inv)


class UnknownComponent(ValueError):
    pass


def plan_logs(s: Settings, inv: Inventory, component: str | None, tail: int = 200) -> list[Step]:
    if component:
        targets = inv.find(component)
        if not targets:
            raise UnknownComponent(f"unknown component '{component}': choose one of "
                                   f"{', '.join(dict.fromkeys(inv.components() + list(PHASES)))}")
    else:
        targets = list(inv.workloads)
    return [Step(f"[{w.component}] logs of {w.namespace}/{w.name}",
                 s.kubectl_argv("logs", "-n", w.namespace, "-l", w.selector_arg, "--all-containers", "--prefix",
                                f"--tail={tail}", "--max-log-requests=20"), optional=True)
            for w in targets]


# --- test / cleanup --------------------------------------------------------------------------------------

def plan_test(s: Settings, pytest_args: tuple[str, ...] = ()) -> list[Step]:
    env = {"NOVA_RELEASE": s.release, "NOVA_NAMESPACE": s.namespace, "NOVA_VALUES": ",".join(s.values),
           "NOVA_CHART": s.chart}
    if s.context:
        env["NOVA_KUBE_CONTEXT"] = s.context
    return [
        Step(f"helm test {s.release}", s.helm_argv("test", s.release, "--namespace", s.namespace,
                                                    "--timeout", s.timeout, "--logs")),
        Step("cluster tests (pytest -m cluster)",
             (s.python, "-m", "pytest", "-q", "-m", "cluster", s.tests_dir, *pytest_args), env=env),
    ]


def plan_cleanup(s: Settings, inv: Inventory) -> list[Step]:
    steps = [Step(f"helm uninstall {s.release}",
                  s.helm_argv("uninstall", s.release, "--namespace", s.namespace, "--ignore-not-found",
                              "--wait", "--timeout", s.timeout))]
    # StatefulSet volumes outlive the release: delete the claims, then the namespaces we created.
    for ns in inv.namespaces:
        steps.append(Step(f"delete the release's PersistentVolumeClaims in {ns}",
                          s.kubectl_argv("delete", "pvc", "-n", ns, "-l", f"app.kubernetes.io/instance={s.release}",
                                         "--ignore-not-found")))
    doomed = [n for n in dict.fromkeys([*inv.namespaces, *inv.rendered_namespaces]) if n not in SYSTEM_NAMESPACES]
    if doomed:
        steps.append(Step(f"delete namespaces {', '.join(doomed)}",
                          s.kubectl_argv("delete", "namespace", *doomed, "--ignore-not-found")))
    return steps


def relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
