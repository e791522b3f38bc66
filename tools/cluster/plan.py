"""Each verb as a plan: the list of commands it runs, in order, computed without touching a cluster.

A plan is data (``Step``s); :mod:`tools.cluster.runner` executes it. Unit tests check the plans.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.access import CLIENT, DNS, SELF, Access, client_pod_manifest, client_pod_name
from tools.cluster.inventory import PHASE_TITLES, PHASES, SYSTEM_NAMESPACES, Inventory, SecretRef, Workload


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
    client_suffix: str = "cluster-client"  # name of the short-lived client pod: <release>-<client_suffix>

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
    # The in-cluster connections this step opens (client -> target:port), proven allowed by the rendered
    # NetworkPolicies in tests/unit/test_cluster_reachability.py; every `kubectl exec` step declares them.
    access: tuple[Access, ...] = ()

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


# Shell run inside a pod. The password arrives on stdin (never argv); the answer is checked, not the exit code:
# redis-cli prints NOAUTH/WRONGPASS and exits 0, psql may print nothing useful.
_STDIN_REDIS_AUTH = 'p=$(cat); if [ -n "$p" ]; then REDISCLI_AUTH=$p; export REDISCLI_AUTH; fi; '
_NO_REDIS_AUTH = "unset REDISCLI_AUTH; "


def sentinel_master_script(host: str, port: int, master_set: str, with_password: bool) -> str:
    """Prints `master <host> port <port>`; fails (exit 1, the answer on stderr) unless Sentinel names one."""
    where = f"Sentinel {host}:{port}"
    return ((_STDIN_REDIS_AUTH if with_password else _NO_REDIS_AUTH)
            + f"out=$(redis-cli --no-auth-warning --raw -h {shlex.quote(host)} -p {port} "
            f"SENTINEL get-master-addr-by-name {shlex.quote(master_set)} 2>&1); set -f; set -- $out; "
            'if [ "$#" -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null; then echo "master $1 port $2"; '
            f'else echo "{where} names no master of {master_set}: $out" >&2; exit 1; fi')


def redis_role_script(host: str, port: int, with_password: bool) -> str:
    """Prints the role; fails unless ROLE's first line is `master`."""
    return ((_STDIN_REDIS_AUTH if with_password else _NO_REDIS_AUTH)
            + f"out=$(redis-cli --no-auth-warning --raw -h {shlex.quote(host)} -p {port} ROLE 2>&1); "
            'role=$(printf "%s\\n" "$out" | head -n 1); '
            f'if [ "$role" = master ]; then echo "{host}:{port} reaches the master"; '
            f'else echo "{host}:{port} answered [$role], expected master" >&2; exit 1; fi')


def postgres_primary_script(host: str, port: int, user: str) -> str:
    """Prints ok; fails unless `SELECT pg_is_in_recovery()` answers f (the primary, not a replica)."""
    return ('PGPASSWORD=$(cat); PGCONNECT_TIMEOUT=5; PGPASSFILE=/dev/null; export PGPASSWORD PGCONNECT_TIMEOUT PGPASSFILE; '
            f"out=$(psql -X -tA -h {shlex.quote(host)} -p {port} -U {shlex.quote(user)} -d postgres "
            "-c 'SELECT pg_is_in_recovery()' 2>&1); "
            f'if [ "$out" = f ]; then echo "{host}:{port} reaches the primary (pg_is_in_recovery = f)"; '
            f'else echo "{host}:{port} answered [$out], expected f (not in recovery)" >&2; exit 1; fi')


def read_secret_step(s: Settings, ref: SecretRef, capture: str, what: str) -> Step:
    keys = ref.key + (f" (else {ref.fallback})" if ref.fallback else "")
    return Step(f"read the {what} from Secret {ref.namespace}/{ref.name}, key {keys}",
                s.kubectl_argv("get", "secret", ref.name, "-n", ref.namespace, "-o", ref.go_template()),
                capture=capture, optional=True)


def _svc_host(inv: Inventory, suffix: str, phase: str) -> tuple[str, int] | None:
    sp = inv.service(suffix, phase)
    return (f"{sp.name}.{sp.namespace}.svc", sp.port) if sp else None


@dataclass(frozen=True)
class Client:
    """The short-lived client pod of a plan: where probes run (see tools.cluster.access)."""

    name: str
    namespace: str
    manifest: str
    containers: tuple[str, ...]

    def exec_argv(self, s: Settings, container: str, script: str, stdin: bool) -> tuple[str, ...]:
        return s.kubectl_argv("exec", *(("-i",) if stdin else ()), "-n", self.namespace, self.name, "-c", container,
                              "--", "sh", "-c", script)


def client(s: Settings, inv: Inventory) -> Client | None:
    """The client pod with the helm test pods' identity; None when the render has no test pod (tests.enabled
    false): then no identity the NetworkPolicies admit exists, and the Service checks are skipped."""
    if not inv.test_pod:
        return None
    pod = client_pod_manifest(inv.test_pod, inv.redis_image(), client_pod_name(s.release, s.client_suffix))
    pod["metadata"]["namespace"] = pod["metadata"].get("namespace") or inv.release_namespace
    names = tuple(c["name"] for c in pod["spec"]["containers"])
    if not names:
        return None
    return Client(pod["metadata"]["name"], pod["metadata"]["namespace"], json.dumps(pod, indent=2), names)


def client_setup_steps(s: Settings, c: Client) -> list[Step]:
    return [
        Step(f"start the client pod {c.namespace}/{c.name} (the helm test pods' identity, admitted by the "
             "NetworkPolicies)", s.kubectl_argv("apply", "-f", "-"), stdin=c.manifest, optional=True),
        Step(f"wait for the client pod {c.namespace}/{c.name}",
             s.kubectl_argv("wait", "--for=condition=Ready", f"pod/{c.name}", "-n", c.namespace, "--timeout=180s"),
             optional=True),
    ]


def client_teardown_steps(s: Settings, c: Client) -> list[Step]:
    return [Step(f"delete the client pod {c.namespace}/{c.name}",
                 s.kubectl_argv("delete", "pod", c.name, "-n", c.namespace, "--ignore-not-found", "--wait=false"),
                 optional=True)]


def redis_master_steps(s: Settings, inv: Inventory, c: Client | None = None) -> list[Step]:
    """Ask Sentinel for the current master (with Sentinel's password), then the write-safe endpoint which role
    it reaches (with Redis's), both from the client pod; the answers are checked, not only the exit codes."""
    w = inv.redis
    if w is None:
        return []
    steps: list[Step] = []
    sentinel_pw, redis_pw = inv.sentinel_password(), inv.redis_password()
    sentinel = _svc_host(inv, "-sentinel", "redis")
    if c is not None and "redis" in c.containers and sentinel:
        if sentinel_pw:
            steps.append(read_secret_step(s, sentinel_pw, "sentinel_password", "Sentinel password"))
        steps.append(Step(f"Redis master according to Sentinel {sentinel[0]}:{sentinel[1]} (master set "
                          f"'{inv.master_set}')",
                          c.exec_argv(s, "redis", sentinel_master_script(*sentinel, inv.master_set, bool(sentinel_pw)),
                                      bool(sentinel_pw)),
                          stdin_from="sentinel_password" if sentinel_pw else None, optional=True,
                          access=(Access(CLIENT, DNS, "dns"), Access(CLIENT, "redis-sentinel", "sentinel"))))
    else:
        # No admitted client identity: the pod's own Sentinel over loopback (no NetworkPolicy applies).
        container = w.container_with_port("sentinel", 26379) or w.containers[0]
        port = next((int(e["value"]) for cn, e in w.env() if cn == container and e.get("name") == "SENTINEL_PORT"
                     and e.get("value")), 26379)
        if sentinel_pw:
            steps.append(read_secret_step(s, sentinel_pw, "sentinel_password", "Sentinel password"))
        steps.append(Step(f"Redis master according to Sentinel ({w.name}-0, master set '{inv.master_set}')",
                          s.kubectl_argv("exec", *(("-i",) if sentinel_pw else ()), "-n", w.namespace, f"{w.name}-0",
                                         "-c", container, "--", "sh", "-c",
                                         sentinel_master_script("127.0.0.1", port, inv.master_set, bool(sentinel_pw))),
                          stdin_from="sentinel_password" if sentinel_pw else None, optional=True,
                          access=(Access("redis", SELF, "sentinel"),)))
    master = _svc_host(inv, "-master", "redis")
    if master and c is not None and "redis" in c.containers:
        if redis_pw:
            steps.append(read_secret_step(s, redis_pw, "redis_password", "Redis password"))
        steps.append(Step(f"role behind the write-safe endpoint {master[0]}:{master[1]} (expect master)",
                          c.exec_argv(s, "redis", redis_role_script(*master, bool(redis_pw)), bool(redis_pw)),
                          stdin_from="redis_password" if redis_pw else None, optional=True,
                          access=(Access(CLIENT, DNS, "dns"), Access(CLIENT, "redis-master", "redis"))))
    elif master:
        steps.append(note(f"  (write-safe endpoint {master[0]} not checked: no helm test pod identity in this render, "
                          "so no client the NetworkPolicies admit; set tests.enabled=true)"))
    return steps


def _endpoint_pods(s: Settings, namespace: str, service: str, what: str) -> Step:
    return Step(f"pods behind the {what} Service {namespace}/{service}",
                s.kubectl_argv("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}",
                               "-o", "jsonpath={range .items[*].endpoints[*]}{.targetRef.name} {.conditions.ready}{\"\\n\"}{end}"),
                optional=True)


def postgres_leader_steps(s: Settings, inv: Inventory, c: Client | None = None) -> list[Step]:
    w = inv.postgres
    if w is None:
        return []
    steps = [Step(f"PostgreSQL leader (pods labelled {inv.role_label}=primary by Patroni)",
                  s.kubectl_argv("get", "pods", "-n", w.namespace, "-l", f"{w.selector_arg},{inv.role_label}=primary",
                                 "-o", "name"), optional=True)]
    patroni = w.container_with_port("patroni", 8008) or w.containers[0]
    # patronictl reads the members from the DCS (etcd) and asks the local REST API.
    steps.append(Step("Patroni cluster members (patronictl list)",
                      s.kubectl_argv("exec", "-n", w.namespace, f"{w.name}-0", "-c", patroni, "--",
                                     "sh", "-c", 'patronictl -c "${PATRONICTL_CONFIG_FILE:-/etc/patroni/patroni.yml}" list'),
                      optional=True,
                      access=(Access("postgres", "etcd", "client"), Access("postgres", SELF, "patroni"))))
    primary = inv.service("-primary", "postgresql")
    if primary:
        steps.append(_endpoint_pods(s, primary.namespace, primary.name, "read-write"))
        password = inv.postgres_password()
        host = f"{primary.name}.{primary.namespace}.svc"
        if c is not None and "psql" in c.containers and password:
            steps.append(read_secret_step(s, password, "postgres_password", "PostgreSQL superuser password"))
            steps.append(Step(f"the read-write Service {host}:{primary.port} reaches the primary (expect "
                              "pg_is_in_recovery = f)",
                              c.exec_argv(s, "psql", postgres_primary_script(host, primary.port, inv.postgres_superuser),
                                          True),
                              stdin_from="postgres_password", optional=True,
                              access=(Access(CLIENT, DNS, "dns"), Access(CLIENT, "postgres-primary", "postgresql"))))
    return steps


def port_forward_notes(s: Settings, inv: Inventory) -> list[Step]:
    """One port-forward per Service (its first port), each on its own local port: the Service's port, or the
    next free one above it when another Service took it (two PostgreSQL Services on 5432, say)."""
    lines = [note("addresses (port-forward, then connect to localhost):")]
    seen: set[tuple[str, str]] = set()
    taken: set[int] = set()
    ctx = f" --context {s.context}" if s.context else ""
    for sp in inv.services:
        if (sp.namespace, sp.name) in seen:
            continue
        seen.add((sp.namespace, sp.name))
        local = sp.port
        while local in taken:
            local += 1
        taken.add(local)
        lines.append(note(f"  kubectl{ctx} port-forward -n {sp.namespace} svc/{sp.name} {local}:{sp.port}"))
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
    c = client(s, inv)
    started = False
    for i, phase in enumerate(PHASES, 1):
        title = f"{i}/{len(PHASES)} {PHASE_TITLES[phase]}"
        workloads = inv.phase(phase)
        if not workloads:
            steps.append(note(f"[{title}] nothing to wait for (disabled in these values)"))
            continue
        steps += [wait_step(s, w, title) for w in workloads]
        if phase in ("redis", "postgresql") and c is not None and not started:
            steps += client_setup_steps(s, c)
            started = True
        if phase == "redis":
            steps += redis_master_steps(s, inv, c)
        elif phase == "postgresql":
            steps += postgres_leader_steps(s, inv, c)
        steps.append(note(f"[{title}] ready"))
    if started and c is not None:
        steps += client_teardown_steps(s, c)
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
    c = client(s, inv)
    probes: list[Step] = []
    for phase in PHASES:
        for w in inv.phase(phase):
            steps.append(Step(f"[{w.component}] {w.kind} {w.namespace}/{w.name}: ready counts",
                              s.kubectl_argv("get", w.ref, "-n", w.namespace), optional=True))
            steps.append(Step(f"[{w.component}] pods",
                              s.kubectl_argv("get", "pods", "-n", w.namespace, "-l", w.selector_arg, "-o", "wide"),
                              optional=True))
        if phase == "redis":
            probes += redis_master_steps(s, inv, c)
        elif phase == "postgresql":
            probes += postgres_leader_steps(s, inv, c)
    if c is not None and probes:
        probes = [*client_setup_steps(s, c), *probes, *client_teardown_steps(s, c)]
    return steps + probes + port_forward_notes(s, inv)


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
