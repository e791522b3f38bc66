"""Helpers of the cluster tests: the installed release (`Nova`), the client pod every connection starts from
(`ClientPod`: the helm test pods' identity, the one the charts' NetworkPolicies admit), the `reaches`
declaration each test carries, polling, and readiness waits that use pytest-helm-charts' helpers."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tools import helm
from tools.cluster import inventory
from tools.cluster.access import Access
from tools.manifest import KubeObject

F = TypeVar("F", bound=Callable[..., Any])
# Replies of redis-cli that mean the command did not run; redis-cli still exits 0 on them.
REDIS_REFUSALS = ("NOAUTH", "WRONGPASS", "AUTH failed", "ERR", "NOPERM", "Could not connect")


def reaches(*accesses: Access) -> Callable[[F], F]:
    """Declares the in-cluster connections a test opens (client -> target:port; none: it only talks to the API
    server). tests/unit/test_cluster_reachability.py requires it on every cluster test and proves each one
    allowed by the rendered NetworkPolicies of every ci/ scenario."""
    def mark(fn: F) -> F:
        fn.__reaches__ = accesses  # type: ignore[attr-defined]
        return fn
    return mark


@dataclass
class Nova:
    """The installed release and small helpers around kubectl (exec needs kubectl; reads use pykube)."""

    kubeconfig: str
    context: str | None
    release: str
    namespace: str
    chart: str
    values: list[str]
    objects: list[KubeObject] = field(repr=False)
    inv: inventory.Inventory = field(repr=False)

    # -- kubectl / helm -------------------------------------------------------------------------------
    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, *(["--context", self.context] if self.context else []), *args]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args[:4])} ... failed: {proc.stderr.strip()}")
        return proc.stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str) -> str:
        extra = ["--kubeconfig", self.kubeconfig, *(["--kube-context", self.context] if self.context else [])]
        return helm.run([*args, *extra], context=f"release {self.release}")

    def sh(self, namespace: str, pod: str, container: str, script: str, stdin: str | None = None,
           check: bool = True) -> str:
        """``sh -c script`` in a container; secrets travel on stdin, never on the command line."""
        return self.kubectl("exec", "-i" if stdin is not None else "-q", "-n", namespace, pod, "-c", container, "--",
                            "sh", "-c", script, stdin=stdin, check=check)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        data = self.kubectl_json("get", "secret", name, "-n", namespace).get("data") or {}
        assert key in data, f"Secret {namespace}/{name} has no key {key}"
        return base64.b64decode(data[key]).decode()

    def pods(self, w: inventory.Workload, extra_selector: str = "") -> list[dict[str, Any]]:
        sel = w.selector_arg + (f",{extra_selector}" if extra_selector else "")
        return self.kubectl_json("get", "pods", "-n", w.namespace, "-l", sel).get("items", [])

    def running_pods(self, w: inventory.Workload) -> list[dict[str, Any]]:
        return [p for p in self.pods(w)
                if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
                and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]

    def endpoint_pods(self, namespace: str, service: str) -> set[str]:
        slices = self.kubectl_json("get", "endpointslices", "-n", namespace, "-l",
                                   f"kubernetes.io/service-name={service}").get("items", [])
        return {ep["targetRef"]["name"] for s in slices for ep in s.get("endpoints") or []
                if ep.get("targetRef") and (ep.get("conditions") or {}).get("ready", True)}

    # -- rendered objects --------------------------------------------------------------------------------
    def rendered(self, kind: str) -> list[KubeObject]:
        return [o for o in self.objects if o.kind == kind
                and "helm.sh/hook" not in ((o.obj.get("metadata") or {}).get("annotations") or {})]

    def env_secret(self, w: inventory.Workload, var_or_key: str) -> tuple[str, str] | None:
        """(secret, key) of an env var (by name or by secret key) in a workload's pod template."""
        for _, e in w.env():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref and var_or_key in (e.get("name"), ref.get("key")):
                return ref["name"], ref["key"]
        return None

    def env_value(self, w: inventory.Workload, name: str, default: str) -> str:
        return next((str(e["value"]) for _, e in w.env() if e.get("name") == name and "value" in e), default)


@dataclass
class ClientPod:
    """The short-lived client pod (tools.cluster.plan.client): redis-cli in container ``redis``, psql in
    ``psql``. Passwords go on stdin; answers that mean "refused" raise instead of passing as output."""

    nova: Nova
    name: str
    namespace: str

    def redis(self, host: str, port: int, command: str, password: str) -> str:
        out = self.nova.sh(self.namespace, self.name, "redis",
                           'p=$(cat); if [ -n "$p" ]; then REDISCLI_AUTH=$p; export REDISCLI_AUTH; fi; '
                           f"redis-cli --no-auth-warning --raw -h {host} -p {port} {command} 2>&1",
                           stdin=password).strip()
        if out.startswith(REDIS_REFUSALS):
            raise AssertionError(f"{host}:{port} refused `{command.split()[0]}`: {out.splitlines()[0][:200]}")
        return out

    def psql(self, host: str, port: int, user: str, sql: str, password: str, database: str = "postgres") -> str:
        return self.nova.sh(self.namespace, self.name, "psql",
                            "PGPASSWORD=$(cat) PGCONNECT_TIMEOUT=5 PGPASSFILE=/dev/null "
                            f"psql -X -v ON_ERROR_STOP=1 -tA -h {host} -p {port} -U {user} -d {database} "
                            f"-c {shlex.quote(sql)}", stdin=password).strip()


def pod_host(w: inventory.Workload, pod: str) -> str:
    """A StatefulSet pod's stable DNS name under its headless Service."""
    return f"{pod}.{w.spec.get('serviceName', w.name)}.{w.namespace}.svc"


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last error."""
    deadline = time.monotonic() + timeout
    last: str = "never true"
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, subprocess.SubprocessError, KeyError, ValueError, IndexError) as exc:
            last = str(exc)[:300]
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last})")



def wait_all_ready(nova: Nova, kube_cluster: Any, timeout: int) -> None:
    """Every StatefulSet and Deployment of the release has all its replicas ready."""
    by_ns: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w in nova.inv.workloads:
        by_ns[(w.kind, w.namespace)].append(w.name)
    for (kind, ns), names in by_ns.items():
        if kind == "StatefulSet":
            wait_for_stateful_sets_to_run(kube_cluster.kube_client, names, ns, timeout_sec=timeout)
        else:
            wait_for_deployments_to_run(kube_cluster.kube_client, names, ns, timeout_sec=timeout, missing_ok=False)
