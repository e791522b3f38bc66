"""Run the nova-postgres chart's rendered etcd and Patroni/PostgreSQL configuration on real daemons.

Everything a daemon runs comes from ``helm template`` output (through tools.helm): the etcd container's args,
the Patroni ConfigMap (patroni.yml, the role-label callback, the preStop script), the bootstrap ConfigMap (plan
and script), the container env (secrets from the rendered Secret, downward-API fields from the pod identity).
The only changes are the ones a container runtime and a cluster would make, applied generically:

- container mount paths -> per-pod host directories (ConfigMap volumes are written out as files);
- cluster DNS names (``<pod>.<service>.<ns>.svc.<domain>``) and ``0.0.0.0`` listen addresses -> the pod's
  address in the loopback block this cluster claims (127.A.B.0/24, see netutil.py: etcd members 127.A.B.1..,
  PostgreSQL pods 127.A.B.11..), so two runs on one host never share an address;
- the Kubernetes API -> the fake API server of tests/fakekube.py on 127.A.B.250, enforcing the rendered Role and
  RoleBinding and keeping the pods' labels, so Service selectors can be evaluated against the labels the callback set;
- a Service DNS name -> the address of the ready pod its rendered selector picks (evaluated like endpoints:
  selector labels match and the rendered readiness probe passes, run as kubelet runs it: httpGet, tcpSocket or
  exec with the container's env, :meth:`Cluster.probe`); for the bootstrap Job, the -primary
  Service is a stable "ClusterIP" on 127.A.B.241 (:class:`ServiceIP`) that routes each new connection to the pod
  selected at that moment and refuses connections while none is, as kube-proxy does.

The ports are the chart's, except one a wildcard listener on this host holds, which :func:`render` moves with
--set (:func:`netutil.port_for`). Patroni, PostgreSQL and etcd run as the ``postgres`` OS user (setpriv), data
under a temporary directory. Processes are stopped by PID (process groups they were started in) in
:meth:`Cluster.stop`; the temp dir is removed and the block released on exit. A daemon that cannot bind raises
netutil.BindError (the address and its holder); :func:`running_cluster` then starts again on a new block.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from tests.fakekube import FakeKubeAPI
from tests.runtime import log_block, netutil, parsed_yaml
from tools import helm
from tools.manifest import KubeObject

ROOT = helm.REPO_ROOT
CHART = ROOT / "charts" / "nova-postgres"
RELEASE = "nova"
NAMESPACE = "nova-database"
ETCD_HOST = 1        # member i -> <block>.(1 + i)
PG_HOST = 11         # pod i -> <block>.(11 + i)
BOOTSTRAP_HOST = 240  # the bootstrap Job's pod
SERVICE_HOST = 241   # the -primary Service's "ClusterIP" (ServiceIP)
API_HOST = 250       # the fake Kubernetes API
PORT_KEYS = ("postgresql.port", "patroni.restApiPort", "etcd.clientPort", "etcd.peerPort")
OS_USER = "postgres"
# This host's PostgreSQL 15 (Debian's layout): a profile that names an image's binDir (values/production.yaml,
# Percona's /usr/pgsql-15/bin) is rendered here with postgresql.binDir set to this.
HOST_BIN_DIR = "/usr/lib/postgresql/15/bin"
BINARIES = ("etcd", "patroni", f"{HOST_BIN_DIR}/postgres", f"{HOST_BIN_DIR}/pg_rewind", "setpriv", "/usr/bin/python3")
SYSTEM_PYTHON = "/usr/bin/python3"   # has psycopg2 (a Patroni dependency), like the image


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if not (shutil.which(b) or Path(b).exists())]


def port_values(prefix: str = "") -> list[str]:
    """--set values moving the chart's ports that a wildcard listener on this host holds (usually none).
    ``prefix``: the subchart's alias + "." (``postgres.`` in the umbrella)."""
    defaults: Any = parsed_yaml((CHART / "values.yaml").read_text())
    moved = []
    for key in PORT_KEYS:
        default = defaults
        for part in key.split("."):
            default = default[part]
        port = netutil.port_for(int(default))
        if port != int(default):
            moved.append(f"{prefix}{key}={port}")
    return moved


def render(values: Sequence[str | Path] = (), set_values: Sequence[str] = (), *, major: int = 4
           ) -> list[KubeObject]:
    return helm.render(CHART, values, [*port_values(), *set_values], helm=helm.find_helm(major), release=RELEASE,
                       namespace=NAMESPACE)


# ----------------------------------------------------------------------------------------------------------
# Rendered objects
# ----------------------------------------------------------------------------------------------------------
class Chart:
    """Lookup over one render of the chart."""

    def __init__(self, objects: Sequence[KubeObject]) -> None:
        self.objects = list(objects)

    def get(self, kind: str, suffix: str = "") -> dict[str, Any]:
        found = [o.obj for o in self.objects if o.kind == kind and o.name.endswith(suffix)]
        if len(found) != 1:
            raise LookupError(f"expected one {kind} named *{suffix}, found {[f['metadata']['name'] for f in found]}")
        return found[0]

    def statefulset(self, component: str) -> dict[str, Any]:
        for o in self.objects:
            if o.kind == "StatefulSet" and o.obj["metadata"]["labels"].get("app.kubernetes.io/component") == component:
                return o.obj
        raise LookupError(f"no StatefulSet for component {component}")

    def secret(self) -> dict[str, str]:
        sec = self.get("Secret", "-credentials")
        data = {k: base64.b64decode(v).decode() for k, v in (sec.get("data") or {}).items()}
        data.update(sec.get("stringData") or {})
        return data

    def secrets(self) -> dict[str, dict[str, str]]:
        return {self.get("Secret", "-credentials")["metadata"]["name"]: self.secret()}

    def component(self, kind: str, component: str) -> dict[str, Any]:
        """The one object of ``kind`` labelled app.kubernetes.io/component=``component`` (the bootstrap Job's
        name ends in a hash of its inputs)."""
        found = [o.obj for o in self.objects if o.kind == kind
                 and (o.obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == component]
        if len(found) != 1:
            raise LookupError(f"expected one {kind} of component {component}, found "
                              f"{[f['metadata']['name'] for f in found]}")
        return found[0]

    def configmap(self, suffix: str) -> dict[str, str]:
        return self.get("ConfigMap", suffix)["data"]

    def service(self, suffix: str) -> dict[str, Any]:
        return self.get("Service", suffix)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: defined variables are replaced, $$ escapes, unknown references stay."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


@dataclass
class Pod:
    """Identity of one simulated pod: what the downward API and the container runtime provide."""

    name: str
    ip: str
    root: Path
    mounts: dict[str, Path] = field(default_factory=dict)
    namespace: str = NAMESPACE

    def field(self, path: str) -> str:
        return {"metadata.name": self.name, "metadata.namespace": self.namespace, "status.podIP": self.ip}[path]


def container_env(container: dict[str, Any], pod: Pod, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            env[item["name"]] = pod.field(ref["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in ref:
            sk = ref["secretKeyRef"]
            env[item["name"]] = secrets[sk["name"]][sk["key"]]
        else:
            raise ValueError(f"unsupported valueFrom {ref}")
    return env


class Translator:
    """Container view -> host view: mount paths, cluster DNS names, wildcard listen addresses."""

    def __init__(self, mounts: dict[str, Path], hosts: dict[str, str], listen_ip: str) -> None:
        self.mounts = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
        self.hosts = sorted(hosts.items(), key=lambda kv: -len(kv[0]))
        self.listen_ip = listen_ip

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, str):
            return value
        for name, ip in self.hosts:
            value = value.replace(name, ip)
        value = value.replace("0.0.0.0", self.listen_ip)
        if self.mounts:  # one pass, so a host path is never translated again
            hosts = dict(self.mounts)
            pattern = r"(?:^|(?<=[\s=:'\"]))(" + "|".join(re.escape(m) for m, _ in self.mounts) + r")(?=/|$|[\s'\"])"
            value = re.sub(pattern, lambda m: str(hosts[m.group(1)]), value)
        return value


# ----------------------------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------------------------
def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", *cmd]


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(OS_USER)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return 0


def http_json(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return json.loads(e.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


class ServiceIP:
    """A Service's ClusterIP as kube-proxy provides it: a fixed address; each new connection goes to a pod the
    Service selects at that moment (``endpoints()``), and is refused (closed at once) while it selects none.
    ``refused`` counts those, ``routed`` the forwarded connections."""

    def __init__(self, endpoints: Any, ip: str, port: int) -> None:
        self.endpoints = endpoints            # () -> list of pod addresses
        self.ip, self.port = ip, port
        self.refused = 0
        self.routed = 0
        self._sock: socket.socket | None = None

    def __enter__(self) -> Self:
        self._sock = netutil.bind_listener(self.ip, self.port)
        threading.Thread(target=self._accept, name=f"service-ip-{self.ip}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._route, args=(client,), daemon=True).start()

    def _route(self, client: socket.socket) -> None:
        try:
            targets = self.endpoints()
        except Exception:  # noqa: BLE001 - a failing lookup is "no endpoints"
            targets = []
        if not targets:
            self.refused += 1
            client.close()
            return
        try:
            upstream = socket.create_connection((targets[0], self.port), timeout=3)
        except OSError:
            self.refused += 1
            client.close()
            return
        upstream.settimeout(None)
        self.routed += 1
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass
class PendingBootstrap:
    """A bootstrap Job command started in the background (see :meth:`Cluster.start_bootstrap`)."""

    popen: subprocess.Popen[str]
    service: ServiceIP

    def result(self, timeout: float = 120, what: str = "the bootstrap") -> dict[str, Any]:
        """Wait for the command: its last stdout line (JSON; {} when it is not JSON) plus returncode, stderr and
        the whole stdout. A command still running after ``timeout`` is killed (TimeoutError with its output)."""
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            out, err = self.popen.communicate()
            raise TimeoutError(f"{what} did not finish in {timeout:.0f} s: {out}\n{err}") from None
        last = out.strip().splitlines()[-1] if out.strip() else "{}"
        try:
            result: dict[str, Any] = json.loads(last)
        except ValueError:
            result = {}
        result.update(returncode=self.popen.returncode, stdout=out, stderr=err)
        return result


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class Kubelet:
    """Each PostgreSQL pod's Ready condition as kubelet keeps it: the rendered readinessProbe runs once per
    ``periodSeconds`` (the first time as soon as the container runs: initialDelaySeconds is not set), Ready turns
    true after ``successThreshold`` successes in a row and false after ``failureThreshold`` failures in a row, and
    false at once when the container stops running (a new container starts not Ready). Between two probes the
    condition keeps the last result, so the routing seen through it lags a role change exactly as a real
    Service's endpoints do. Called from several threads (samplers and waits): one probe per pod and period."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._pods: dict[int, dict[str, Any]] = {}
        self.probes = 0

    def _timing(self) -> tuple[float, int, int]:
        probe = self.cluster.pg_container()["readinessProbe"]
        return (float(probe.get("periodSeconds", 10)), int(probe.get("successThreshold", 1)),
                int(probe.get("failureThreshold", 3)))

    def ready(self, i: int) -> bool:
        proc = self.cluster.procs.get(self.cluster.pg_pods[i].name)
        if proc is None or proc.popen.poll() is not None:
            with self._lock:
                self._pods.pop(i, None)
            return False
        period, need_ok, need_fail = self._timing()
        now = time.monotonic()
        with self._lock:
            pod = self._pods.get(i)
            if pod is None or pod["pid"] != proc.popen.pid:  # a new container: not Ready, probed at once
                pod = self._pods[i] = {"pid": proc.popen.pid, "ready": False, "ok": 0, "fail": 0, "due": now,
                                       "probing": False}
            if pod["probing"] or now < pod["due"]:
                return bool(pod["ready"])
            pod["probing"], pod["due"] = True, max(pod["due"] + period, now)
        try:
            passed = self.cluster.ready(i)
        finally:
            with self._lock:
                pod["probing"] = False
                self.probes += 1
        with self._lock:
            if passed:
                pod["ok"], pod["fail"] = pod["ok"] + 1, 0
                pod["ready"] = pod["ready"] or pod["ok"] >= need_ok
            else:
                pod["ok"], pod["fail"] = 0, pod["fail"] + 1
                pod["ready"] = pod["ready"] and pod["fail"] < need_fail
            return bool(pod["ready"]) if self._pods.get(i) is pod else False

    def lag(self) -> float:
        """How long the Ready condition can keep a result that no longer holds: failureThreshold probe periods,
        plus the probe's timeoutSeconds when the answer that flips it is slow."""
        probe = self.cluster.pg_container()["readinessProbe"]
        period, _, need_fail = self._timing()
        return period * need_fail + float(probe.get("timeoutSeconds", 1))


class Cluster:
    """etcd members + Patroni nodes from one render. Use as a context manager; everything stops on exit."""

    def __init__(self, objects: Sequence[KubeObject], *, workdir: Path | None = None) -> None:
        """``workdir``: the parent of this cluster's own temp dir (default the system temp dir); the ``postgres``
        user must be able to enter it (pytest's tmp_path is root-only)."""
        self.chart = Chart(objects)
        self.block = netutil.claim_block()
        self.tmp = Path(tempfile.mkdtemp(prefix="nova-pg-", dir=workdir))
        self.procs: dict[str, Proc] = {}
        self.bootstraps: list[PendingBootstrap] = []
        self.primary_ip: ServiceIP | None = None
        self._pod_envs: dict[str, dict[str, str]] = {}
        self.kubelet = Kubelet(self)
        try:
            self._setup()
        except BaseException:
            self._cleanup()
            raise

    def _setup(self) -> None:
        self.tmp.chmod(0o755)
        self.secrets = self.chart.secrets()
        self.etcd_sts = self.chart.statefulset("etcd")
        self.pg_sts = self.chart.statefulset("postgres")
        self.ns = self.pg_sts["metadata"]["namespace"]
        self.domain = self._cluster_domain()
        self.token = "test-token-" + base64.b16encode(os.urandom(6)).decode()
        self.etcd_pods = [self._pod(self.etcd_sts, i, self.block.host(ETCD_HOST + i))
                          for i in range(self.etcd_sts["spec"]["replicas"])]
        self.pg_pods = [self._pod(self.pg_sts, i, self.block.host(PG_HOST + i))
                        for i in range(self.pg_sts["spec"]["replicas"])]
        self.hosts = self._dns()
        self.role_label = self.pg_container_env(self.pg_pods[0])["NOVA_ROLE_LABEL"]
        self.api = self._fake_api()

    # -- set-up ----------------------------------------------------------------------------------------
    def _fake_api(self) -> FakeKubeAPI:
        """The fake API (tests/fakekube.py) enforcing the rendered Role and RoleBinding, serving the StatefulSet's
        pods (their template labels) to the role-label callback, which authenticates as the pods' ServiceAccount."""
        address = self.block.host(API_HOST)
        try:
            api = FakeKubeAPI([self.chart.get("Role"), self.chart.get("RoleBinding")], address)
        except OSError as exc:
            raise netutil.BindError(address, 0, f"{exc.strerror}") from None
        template = self.pg_sts["spec"]["template"]
        api.sa_token(self.ns, template["spec"].get("serviceAccountName") or "default", self.token)
        for pod in self.pg_pods:
            api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": pod.name, "namespace": self.ns, "labels": dict(template["metadata"]["labels"])}})
        return api

    def _cluster_domain(self) -> str:
        """The cluster DNS domain the render used, read from the etcd member addresses in patroni.yml."""
        hosts = parsed_yaml(self.chart.configmap("-patroni")["patroni.yml"])["etcd3"]["hosts"]
        first = str(hosts).split(",")[0].rsplit(":", 1)[0]
        return first.split(".svc.", 1)[1] if ".svc." in first else "cluster.local"

    def process_uid(self, name: str) -> int:
        """Real uid of a started process (Patroni, etcd), from /proc."""
        status = Path(f"/proc/{self.procs[name].popen.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))

    def _pod(self, sts: dict[str, Any], i: int, ip: str) -> Pod:
        name = f"{sts['metadata']['name']}-{i}"
        root = self.tmp / name
        pod = Pod(name, ip, root, namespace=self.ns)
        spec = sts["spec"]["template"]["spec"]
        for c in spec["containers"][:1]:
            for m in c.get("volumeMounts") or []:
                host = root / m["name"]
                pod.mounts[m["mountPath"]] = host
        return pod

    def _dns(self) -> dict[str, str]:
        hosts: dict[str, str] = {}
        for sts, pods in ((self.etcd_sts, self.etcd_pods), (self.pg_sts, self.pg_pods)):
            svc = sts["spec"]["serviceName"]
            for pod in pods:
                hosts[f"{pod.name}.{svc}.{self.ns}.svc.{self.domain}"] = pod.ip
        return hosts

    def _materialize(self, pod: Pod, sts: dict[str, Any], translate: Translator) -> None:
        spec = sts["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for host in pod.mounts.values():
            host.mkdir(parents=True, exist_ok=True)
            vol = volumes.get(host.name, {})
            if "configMap" in vol:
                data = self.chart.get("ConfigMap", vol["configMap"]["name"])["data"]
                for fname, content in data.items():
                    if fname.endswith((".yml", ".yaml")):
                        content = yaml.safe_dump(translate(yaml.safe_load(content)), sort_keys=False)
                    (host / fname).write_text(content)
        _chown_tree(pod.root)
        for host in pod.mounts.values():
            if host.name != "data":
                host.chmod(0o755)
        if "data" in {h.name for h in pod.mounts.values()}:
            (pod.root / "data").chmod(0o700)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> Proc:
        log = self.tmp / f"{name}.log"
        fh = open(log, "ab")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen(_as_user(cmd), env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        fh.close()
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def base_env(self) -> dict[str, str]:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

    # -- etcd ------------------------------------------------------------------------------------------
    def start_etcd(self) -> None:
        container = self.etcd_sts["spec"]["template"]["spec"]["containers"][0]
        for pod in self.etcd_pods:
            env = container_env(container, pod, self.secrets)
            translate = Translator(pod.mounts, self.hosts, pod.ip)
            self._materialize(pod, self.etcd_sts, translate)
            args = [translate(expand(a, env)) for a in container.get("args") or []]
            binary = shutil.which(Path(container["command"][0]).name) or container["command"][0]
            self._check_free(self.etcd_binds(pod))
            self._spawn(pod.name, [binary, *args], {**self.base_env(), **env}, pod.root)
        netutil.wait_listening({pod.name: self.etcd_binds(pod) for pod in self.etcd_pods}, self._exited_log,
                               lambda name: self.procs[name].popen.pid)
        client_port = self.etcd_port("client")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(http_status(f"http://{p.ip}:{client_port}/health") == 200 for p in self.etcd_pods):
                return
            time.sleep(0.2)
        raise RuntimeError(f"etcd did not become healthy: see {self.tmp}/*etcd*.log")

    def etcd_port(self, name: str) -> int:
        container = self.etcd_sts["spec"]["template"]["spec"]["containers"][0]
        return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name))

    def etcd_binds(self, pod: Pod) -> list[tuple[str, int]]:
        return [(pod.ip, self.etcd_port("client")), (pod.ip, self.etcd_port("peer"))]

    def pg_binds(self, pod: Pod) -> list[tuple[str, int]]:
        return [(pod.ip, self.port("patroni")), (pod.ip, self.port("postgresql"))]

    @staticmethod
    def _check_free(binds: Sequence[tuple[str, int]]) -> None:
        for address, port in binds:
            if netutil.blocking(address, port):
                raise netutil.BindError(address, port, netutil.holder(address, port))

    def _exited_log(self, name: str) -> str | None:
        proc = self.procs[name]
        return None if proc.popen.poll() is None else proc.log.read_text(errors="replace")

    def bind_failure(self) -> netutil.BindError | None:
        """A daemon whose log says its bind failed (Patroni's REST API, PostgreSQL under Patroni, etcd)."""
        pods = {p.name: self.etcd_binds(p) for p in self.etcd_pods} | {p.name: self.pg_binds(p) for p in self.pg_pods}
        for name, proc in self.procs.items():
            if name in pods and proc.log.exists():
                failure = netutil.bind_failure(proc.log.read_text(errors="replace"), pods[name])
                if failure:
                    return failure
        return None

    # -- Patroni ---------------------------------------------------------------------------------------
    def pg_container(self) -> dict[str, Any]:
        return self.pg_sts["spec"]["template"]["spec"]["containers"][0]

    def pg_container_env(self, pod: Pod) -> dict[str, str]:
        return container_env(self.pg_container(), pod, self.secrets)

    def pod_env(self, pod: Pod) -> dict[str, str]:
        """The container env, translated, plus what Kubernetes gives a pod: the API and its token."""
        cached = self._pod_envs.get(pod.name)
        if cached is not None:
            return dict(cached)
        translate = Translator(pod.mounts, self.hosts, pod.ip)
        env = {k: translate(v) for k, v in self.pg_container_env(pod).items()}
        token_file = pod.root / "sa-token"
        if not token_file.exists():
            token_file.write_text(self.token)
            _chown_tree(token_file)
        env.update(NOVA_K8S_API_URL=self.api.url, NOVA_K8S_TOKEN_FILE=str(token_file))
        self._pod_envs[pod.name] = {**self.base_env(), **env}
        return dict(self._pod_envs[pod.name])

    def start_patroni(self, i: int) -> Proc:
        pod = self.pg_pods[i]
        translate = Translator(pod.mounts, self.hosts, pod.ip)
        if not pod.root.exists():
            self._materialize(pod, self.pg_sts, translate)
        container = self.pg_container()
        env = self.pod_env(pod)
        cmd = [translate(expand(a, env)) for a in container["command"] + (container.get("args") or [])]
        cmd[0] = shutil.which(cmd[0]) or cmd[0]
        if not self.alive(i):
            self._check_free(self.pg_binds(pod))
        return self._spawn(pod.name, cmd, env, pod.root)

    @property
    def synchronous_mode(self) -> bool:
        cfg = parsed_yaml(self.chart.configmap("-patroni")["patroni.yml"])
        return bool(cfg["bootstrap"]["dcs"].get("synchronous_mode")) and len(self.pg_pods) > 1

    def rest(self, i: int, path: str) -> int:
        port = self.port("patroni")
        return http_status(f"http://{self.pg_pods[i].ip}:{port}{path}")

    def port(self, name: str) -> int:
        return next(p["containerPort"] for p in self.pg_container()["ports"] if p["name"] == name)

    def patroni_state(self, i: int) -> dict[str, Any] | None:
        return http_json(f"http://{self.pg_pods[i].ip}:{self.port('patroni')}/patroni")

    def leader(self) -> int | None:
        for i in range(len(self.pg_pods)):
            if self.alive(i) and self.rest(i, "/primary") == 200:
                return i
        return None

    def alive(self, i: int) -> bool:
        proc = self.procs.get(self.pg_pods[i].name)
        return proc is not None and proc.popen.poll() is None

    def wait(self, what: str, predicate: Any, timeout: float, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                failure = self.bind_failure()
                if failure:
                    raise failure
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.tmp}\n"
                                   + self.log_tails())
            time.sleep(interval)

    def log_tails(self, lines: int = 15) -> str:
        """The last ``lines`` lines of each process's log, with whether it still runs: a timeout's message carries
        them, because the logs' directory is removed when the cluster stops (unless NOVA_KEEP_TMP=1)."""
        out = []
        for name, proc in sorted(self.procs.items()):
            code = proc.popen.poll()
            out.append(log_block(name, "running" if code is None else f"exited {code}", proc.log, lines))
        return "\n".join(out) if out else "(no process started)"

    def wait_healthy(self, timeout: float = 90) -> int:
        """Wait for one leader and every other node a streaming replica."""
        def ok() -> int | None:
            lead = self.leader()
            if lead is None:
                return None
            cluster = http_json(f"http://{self.pg_pods[lead].ip}:{self.port('patroni')}/cluster") or {}
            members = cluster.get("members") or []
            streaming = [m for m in members if m.get("role") in ("replica", "sync_standby")
                         and m.get("state") in ("streaming", "running")]
            if len(streaming) != len(self.pg_pods) - 1:
                return None
            if self.synchronous_mode and not any(m.get("role") == "sync_standby" for m in members):
                return None
            if any(self.rest(i, "/replica") != 200 for i in range(len(self.pg_pods)) if i != lead):
                return None
            # Patroni's view says "running" before a replica has connected: the leader's pg_stat_replication is
            # the proof that every other node streams from it (a test reading it right after must see them all).
            try:
                rows = query(self.superuser_dsn(self.pg_pods[lead].ip),
                             "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
            except Exception:  # noqa: BLE001 - the leader may be restarting; poll again
                return None
            if {r[0] for r in rows} != {p.name for i, p in enumerate(self.pg_pods) if i != lead}:
                return None
            return lead + 1
        return self.wait("a leader and streaming replicas", ok, timeout) - 1

    # -- routing ---------------------------------------------------------------------------------------
    def pod_labels(self, i: int) -> dict[str, str]:
        return {**self.pg_sts["spec"]["template"]["metadata"]["labels"], **self.api.labels_of(self.ns, self.pg_pods[i].name)}

    def ready(self, i: int) -> bool:
        """The rendered readinessProbe of the postgres container, run as kubelet runs it (one attempt)."""
        return self.alive(i) and self.probe(self.pg_pods[i], self.pg_container(), "readinessProbe")

    def probe(self, pod: Pod, container: dict[str, Any], kind: str) -> bool:
        """One attempt of ``container``'s rendered ``kind`` probe (readinessProbe, livenessProbe, startupProbe) on
        ``pod``: httpGet (pod IP, named or numbered port, 2xx/3xx), tcpSocket (connect), exec (the command with the
        container's env, as the container's user, killed after timeoutSeconds, exit 0). Paths in the command are
        translated like the container's own command."""
        probe = container[kind]
        timeout = float(probe.get("timeoutSeconds", 1))

        def port(value: int | str) -> int:
            if isinstance(value, int):
                return value
            return int(next(p["containerPort"] for p in container["ports"] if p["name"] == value))
        if "httpGet" in probe:
            get = probe["httpGet"]
            scheme = get.get("scheme", "HTTP").lower()
            url = f"{scheme}://{get.get('host') or pod.ip}:{port(get['port'])}{get.get('path', '/')}"
            return 200 <= http_status(url, timeout) < 400
        if "tcpSocket" in probe:
            try:
                socket.create_connection((pod.ip, port(probe["tcpSocket"]["port"])), timeout=timeout).close()
            except OSError:
                return False
            return True
        if "exec" in probe:
            if container is not self.pg_container():
                raise ValueError("exec probes run with the postgres container's env only")
            translate = Translator(pod.mounts, self.hosts, pod.ip)
            cmd = [translate(a) for a in probe["exec"]["command"]]
            try:
                done = subprocess.run(_as_user(cmd), env=self.pod_env(pod), cwd=pod.root, capture_output=True,
                                      timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                return False
            return done.returncode == 0
        raise ValueError(f"unsupported probe handler {sorted(probe)}")

    def endpoints(self, service_suffix: str) -> list[int]:
        """Pod indexes a rendered Service would route to: selector matches the labels, and the pod is ready."""
        return self.routing([service_suffix])[service_suffix]

    def routing(self, service_suffixes: Sequence[str] = ("-primary", "-replicas")) -> dict[str, list[int]]:
        """Endpoints of several Services at one moment: the pods whose labels match and whose Ready condition,
        as kubelet keeps it (:class:`Kubelet`: the probe on its period, not at this call), is true."""
        selectors = {s: self.chart.service(s)["spec"]["selector"] for s in service_suffixes}
        out: dict[str, list[int]] = {s: [] for s in service_suffixes}
        matching: dict[int, list[str]] = {}
        for i in range(len(self.pg_pods)):
            labels = self.pod_labels(i)
            matching[i] = [s for s, sel in selectors.items() if all(labels.get(k) == v for k, v in sel.items())]
        # Every pod, matched or not: kubelet probes on its own period, whatever the labels say.
        ready = _parallel({i: (lambda i=i: self.kubelet.ready(i)) for i in matching})
        for i in sorted(ready):
            if ready[i]:
                for s in matching[i]:
                    out[s].append(i)
        return out

    def service_host(self, service_suffix: str) -> str:
        eps = self.endpoints(service_suffix)
        if len(eps) != 1:
            raise RuntimeError(f"Service *{service_suffix} has {len(eps)} endpoints, expected 1")
        return self.pg_pods[eps[0]].ip

    # -- kill / stop -----------------------------------------------------------------------------------
    def postmaster_pid(self, i: int) -> int | None:
        data_dir = self.data_dir(i)
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def data_dir(self, i: int) -> Path:
        cfg = parsed_yaml((self.config_dir(i) / "patroni.yml").read_text())
        return Path(cfg["postgresql"]["data_dir"])

    def config_dir(self, i: int) -> Path:
        return self.pg_pods[i].root / "config"

    def kill_node(self, i: int) -> None:
        """SIGKILL Patroni and every PostgreSQL process of a node (what a container kill does)."""
        name = self.pg_pods[i].name
        pm = self.postmaster_pid(i)
        proc = self.procs.get(name)
        pids = _descendants(pm) + ([pm] if pm else []) if pm else []
        if proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pm:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pm), signal.SIGKILL)
        if proc:
            proc.popen.wait(timeout=10)
        deadline = time.monotonic() + 10
        while pm and _pid_alive(pm) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        for pending in self.bootstraps:
            if pending.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pending.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    pending.popen.communicate(timeout=10)
        if self.primary_ip is not None:
            self.primary_ip.__exit__(None, None, None)
            self.primary_ip = None
        for i in range(len(self.pg_pods)):
            with contextlib.suppress(Exception):
                self.kill_node(i)
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=10)
        _kill_sessions({proc.popen.pid for proc in self.procs.values()})

    def __enter__(self) -> Self:
        """Start the fake API (once: :func:`started` returns a cluster already entered)."""
        if self.api.thread.is_alive():
            return self
        try:
            self.api.__enter__()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            if self.api.thread.is_alive():
                self.api.__exit__(*exc)
            self._cleanup()

    def _cleanup(self) -> None:
        """Remove the temp dir (NOVA_KEEP_TMP=1 keeps it) and release the address block."""
        api = self.__dict__.get("api")
        if api is not None and not api.thread.is_alive():
            api.server.server_close()
        if not os.environ.get("NOVA_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.block.release()

    # -- SQL ---------------------------------------------------------------------------------------------
    def superuser_dsn(self, host: str, dbname: str = "postgres") -> str:
        cfg = parsed_yaml((self.config_dir(0) / "patroni.yml").read_text())
        user = cfg["postgresql"]["authentication"]["superuser"]["username"]
        return (f"host={host} port={self.port('postgresql')} dbname={dbname} user={user} "
                f"password={self.secrets_flat()['superuser-password']} connect_timeout=3")

    def secrets_flat(self) -> dict[str, str]:
        return next(iter(self.secrets.values()))

    # -- bootstrap Job -------------------------------------------------------------------------------------
    def primary_service_ip(self) -> ServiceIP:
        """The -primary Service's stable address (started on first use, stopped with the cluster)."""
        if self.primary_ip is None:
            self.primary_ip = ServiceIP(lambda: [self.pg_pods[i].ip for i in self.endpoints("-primary")],
                                        self.block.host(SERVICE_HOST), self.port("postgresql")).__enter__()
        return self.primary_ip

    def start_bootstrap(self, objects: Sequence[KubeObject] | None = None,
                        mounted_secrets: dict[str, dict[str, str]] | None = None) -> PendingBootstrap:
        """Start the rendered bootstrap Job's command (from ``objects``, default this cluster's render) with its
        env, in the background, like the Job that Kubernetes starts with the release: PGHOST (the -primary
        Service name) resolves to :meth:`primary_service_ip`, which routes to whichever pod the Service selects
        when the script connects (none before a leader is ready). A later render's Secret keeps this cluster's
        existing keys, as `lookup` does on `helm upgrade`."""
        chart = Chart(objects) if objects is not None else self.chart
        job = chart.component("Job", "bootstrap")
        spec = job["spec"]["template"]["spec"]
        container = spec["containers"][0]
        root = self.tmp / f"bootstrap-{time.monotonic_ns()}"
        pod = Pod(root.name, self.block.host(BOOTSTRAP_HOST), root, namespace=self.ns)
        volumes = {v["name"]: v for v in spec["volumes"]}
        for m in container["volumeMounts"]:
            host = root / m["name"]
            host.mkdir(parents=True)
            pod.mounts[m["mountPath"]] = host
            secret = (volumes[m["name"]].get("secret") or {}).get("secretName")
            if secret in (mounted_secrets or {}):  # a Secret not in the render (cert-manager's), as kubelet mounts it
                items = volumes[m["name"]]["secret"].get("items") or [{"key": k, "path": k} for k in mounted_secrets[secret]]
                for item in items:
                    (host / item["path"]).write_text(mounted_secrets[secret][item["key"]])
            if "configMap" in volumes[m["name"]]:
                for fname, content in chart.get("ConfigMap", volumes[m["name"]]["configMap"]["name"])["data"].items():
                    (host / fname).write_text(content)
        _chown_tree(root)
        secrets = {name: {**data, **self.secrets.get(name, {})} for name, data in chart.secrets().items()}
        env = container_env(container, pod, secrets)
        hosts = dict(self.hosts)
        primary = chart.service("-primary")["metadata"]["name"]
        service = self.primary_service_ip()
        hosts[f"{primary}.{self.ns}.svc.{self.domain}"] = service.ip
        translate = Translator(pod.mounts, hosts, pod.ip)
        env = {**self.base_env(), **{k: translate(v) for k, v in env.items()}}
        cmd = [translate(a) for a in container["command"] + (container.get("args") or [])]
        cmd[0] = SYSTEM_PYTHON if Path(cmd[0]).name.startswith("python") else cmd[0]
        popen = subprocess.Popen(_as_user(cmd), env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        pending = PendingBootstrap(popen, service)
        self.bootstraps.append(pending)
        return pending

    def run_bootstrap(self, objects: Sequence[KubeObject] | None = None, timeout: float = 120,
                      mounted_secrets: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
        """:meth:`start_bootstrap` and wait for it: the last stdout line (JSON) with returncode and stderr."""
        return self.start_bootstrap(objects, mounted_secrets).result(timeout)


def _parallel(calls: dict[int, Callable[[], Any]]) -> dict[int, Any]:
    """Run the calls in threads at once; their results by key (an exception is re-raised)."""
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def run(key: int, call: Callable[[], Any]) -> None:
        try:
            results[key] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(k, c), daemon=True) for k, c in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _descendants(pid: int | None) -> list[int]:
    if not pid:
        return []
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _session_members(sids: set[int]) -> list[int]:
    """Running (not zombie) processes of these sessions: each daemon leads one (start_new_session)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) in sids and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def _kill_sessions(sids: set[int], timeout: float = 10) -> None:
    """SIGKILL whatever still runs in the daemons' sessions (a helper in a process group of its own escapes the
    group kill) and wait until it is gone: a SIGKILLed process can take a while to exit on a loaded host."""
    deadline = time.monotonic() + timeout
    while (left := _session_members(sids)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def started(make: Callable[[], Cluster], start: Callable[[Cluster], Any], attempts: int = 3) -> Cluster:
    """``make()`` a Cluster, enter it and ``start(cluster)``; when a daemon cannot bind, stop and clean it up
    and do both again on a new address block (netutil.retry_on_bind). The caller exits the cluster."""
    def attempt() -> Cluster:
        cluster = make().__enter__()
        try:
            start(cluster)
        except BaseException as exc:
            cluster.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return cluster
    return netutil.retry_on_bind(attempt, attempts, what="etcd and Patroni")


def start_all(cluster: Cluster, timeout: float = 120) -> None:
    """etcd, then every Patroni node, waited until one leader and streaming replicas."""
    cluster.start_etcd()
    for i in range(len(cluster.pg_pods)):
        cluster.start_patroni(i)
    cluster.wait_healthy(timeout)


@contextlib.contextmanager
def running_cluster(objects: Sequence[KubeObject], timeout: float = 120) -> Iterator[Cluster]:
    """etcd + every Patroni node started, waited until one leader and streaming replicas; always cleaned up."""
    cluster = started(lambda: Cluster(objects), lambda c: start_all(c, timeout))
    with cluster:
        yield cluster


# ----------------------------------------------------------------------------------------------------------
# Routing over time
# ----------------------------------------------------------------------------------------------------------
PATRONI_PRIMARY_ROLES = ("master", "primary")


@dataclass
class RoutingSample:
    """The endpoints of -primary and -replicas at ``t`` (monotonic), and every pod's Patroni role (GET /patroni;
    None when it does not answer) read just before and just after the endpoints were evaluated."""

    t: float
    primary: list[int]
    replicas: list[int]
    before: list[str | None]
    after: list[str | None]

    def held(self, i: int) -> str | None:
        """The role pod ``i`` had over the whole evaluation (None when it changed or was unknown)."""
        return self.before[i] if self.before[i] == self.after[i] else None


class RoutingSampler:
    """Samples both Services' endpoints (:meth:`Cluster.routing`: labels from the fake API + the rendered readiness
    probe) every ``interval`` seconds in a thread, until the context exits. A wrong route is counted only when the
    pod's role held over the whole evaluation, so a promotion that lands between the probe and the role read is
    not blamed on routing, while a stale label on a settled replica is."""

    def __init__(self, cluster: Cluster, interval: float = 0.1) -> None:
        self.cluster = cluster
        self.interval = interval
        self.samples: list[RoutingSample] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routing-sampler", daemon=True)

    def _roles(self) -> list[str | None]:
        def role(i: int) -> str | None:
            state = self.cluster.patroni_state(i) if self.cluster.alive(i) else None
            return str(state.get("role")) if state and state.get("role") else None
        roles = _parallel({i: (lambda i=i: role(i)) for i in range(len(self.cluster.pg_pods))})
        return [roles[i] for i in range(len(self.cluster.pg_pods))]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                before = self._roles()
                routes = self.cluster.routing(("-primary", "-replicas"))
                after = self._roles()
            except Exception as exc:  # noqa: BLE001 - recorded, the test reports it
                self.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.samples.append(RoutingSample(started, routes["-primary"], routes["-replicas"], before, after))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def violations(self) -> list[str]:
        """Every sample where -primary had two endpoints or a replica, or -replicas had the primary. One window is
        the documented one (docs/postgres.md, Routing) and not counted: a pod that was primary within the last
        :meth:`Kubelet.lag` seconds (a demoting primary, still labelled `primary`) may stay in -primary until its
        next probe fails, as it does behind a real Service (:meth:`excused` lists those samples)."""
        return self._judged()[0]

    def excused(self) -> list[str]:
        """The samples with a demoting primary still in -primary, which :meth:`violations` does not count."""
        return self._judged()[1]

    def _judged(self) -> tuple[list[str], list[str]]:
        grace = self.cluster.kubelet.lag()
        names = [p.name for p in self.cluster.pg_pods]
        last_primary: dict[int, float] = {}
        wrong: list[str] = []
        excused: list[str] = []
        for s in self.samples:
            for i in range(len(names)):
                if s.before[i] in PATRONI_PRIMARY_ROLES or s.after[i] in PATRONI_PRIMARY_ROLES:
                    last_primary[i] = s.t
            counted = []
            for i in s.primary:
                since = s.t - last_primary.get(i, float("-inf"))
                role = s.held(i)
                if role is not None and role not in PATRONI_PRIMARY_ROLES and since <= grace:
                    excused.append(f"t={s.t:.1f} {names[i]} in -primary as {role}, primary {since:.1f} s ago")
                else:
                    counted.append(i)
            if len(counted) > 1:
                wrong.append(f"t={s.t:.1f} -primary has {len(counted)} endpoints {[names[i] for i in counted]}")
            for i in counted:
                role = s.held(i)
                if role is not None and role not in PATRONI_PRIMARY_ROLES:
                    wrong.append(f"t={s.t:.1f} -primary routes to {names[i]}, a {role}")
            wrong += [f"t={s.t:.1f} -replicas routes to {names[i]}, the primary" for i in s.replicas
                      if s.held(i) in PATRONI_PRIMARY_ROLES]
        return wrong, excused

    def longest(self, predicate: Callable[[RoutingSample], bool], since: float = 0.0, until: float = float("inf")
                ) -> float:
        """Longest run of consecutive samples in [since, until] for which ``predicate`` holds, in seconds (from
        the first such sample to the first sample after the run)."""
        best, start = 0.0, None
        window = [s for s in self.samples if since <= s.t <= until]
        for s in window:
            if predicate(s):
                start = s.t if start is None else start
            elif start is not None:
                best, start = max(best, s.t - start), None
        if start is not None and window:
            best = max(best, window[-1].t - start)
        return best

    def period(self) -> float:
        """Median seconds between two samples."""
        gaps = sorted(b.t - a.t for a, b in zip(self.samples, self.samples[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else 0.0


# ----------------------------------------------------------------------------------------------------------
# Writes, failover
# ----------------------------------------------------------------------------------------------------------
class Writer:
    """Inserts ids one COMMIT at a time into the primary; ``acked`` holds every id whose COMMIT returned."""

    def __init__(self, dsn: str, table: str) -> None:
        import psycopg

        self.table = table
        self.acked: list[int] = []
        self.error: str = ""
        self._stop = threading.Event()
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
        start = self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        self.next_id = int(start) + 1
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s)", (self.next_id,))
            except Exception as exc:  # noqa: BLE001 - the kill ends the connection; that is the point
                self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                return
            self.acked.append(self.next_id)
            self.next_id += 1

    def start(self) -> Writer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=15)
        with contextlib.suppress(Exception):
            self.conn.close()


@dataclass
class FailoverResult:
    old_leader: int
    new_leader: int
    failover_s: float
    acked: list[int]
    present: set[int]
    writer_error: str

    @property
    def lost(self) -> list[int]:
        return [i for i in self.acked if i not in self.present]


def query(dsn: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


# The acknowledged COMMITs a failover test needs before the kill to prove anything (the tests assert more than 50).
MIN_ACKED_BEFORE_KILL = 51


def kill_leader_under_writes(cluster: Cluster, table: str = "acked_writes", warmup: float = 2.0,
                             timeout: float = 60) -> FailoverResult:
    """Write through the -primary Service for ``warmup`` seconds and at least MIN_ACKED_BEFORE_KILL COMMITs,
    SIGKILL the leader's processes, wait until another node is the leader and the -primary Service selects
    exactly it; then read back every acknowledged id."""
    old = cluster.leader()
    if old is None or cluster.endpoints("-primary") != [old]:
        raise RuntimeError(f"no single routed leader before the kill (leader {old}, "
                           f"primary endpoints {cluster.endpoints('-primary')})")
    writer = Writer(cluster.superuser_dsn(cluster.service_host("-primary")), table).start()
    time.sleep(warmup)
    # One synchronous COMMIT at a time: on a loaded machine 2 s can hold fewer than the count the tests need.
    cluster.wait(f"{MIN_ACKED_BEFORE_KILL} acknowledged writes before the kill",
                 lambda: len(writer.acked) >= MIN_ACKED_BEFORE_KILL or writer.error, 60, 0.05)
    if writer.error:
        writer.stop()
        raise RuntimeError(f"the writer failed before the kill: {writer.error}")
    killed_at = time.monotonic()
    cluster.kill_node(old)
    writer.stop()

    def routed() -> int | None:
        lead = cluster.leader()
        if lead is not None and lead != old and cluster.endpoints("-primary") == [lead]:
            return lead + 1
        return None
    new = cluster.wait("a new leader selected by the -primary Service", routed, timeout, interval=0.1) - 1
    failover_s = time.monotonic() - killed_at
    rows = query(cluster.superuser_dsn(cluster.service_host("-primary")), f"SELECT id FROM {table}")
    return FailoverResult(old, new, failover_s, list(writer.acked), {r[0] for r in rows}, writer.error)


def wait_rejoined(cluster: Cluster, node: int, timeout: float = 90) -> dict[str, Any]:
    """Restart a killed node's Patroni and wait until it streams from the leader as a replica, checking on
    every poll that it never runs as a writable primary. Returns what was observed."""
    log_path = cluster.tmp / f"{cluster.pg_pods[node].name}.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    cluster.start_patroni(node)
    observed = {"writable_seen": False, "primary_status_seen": False, "polls": 0}
    dsn = cluster.superuser_dsn(cluster.pg_pods[node].ip)

    def rejoined() -> bool:
        observed["polls"] += 1
        if cluster.rest(node, "/primary") == 200:
            observed["primary_status_seen"] = True
        with contextlib.suppress(Exception):
            if query(dsn, "SELECT pg_is_in_recovery()")[0][0] is False:
                observed["writable_seen"] = True
        if cluster.rest(node, "/replica") != 200:
            return False
        # Asked on every poll: one pass right after the restart can time out on a busy machine.
        leader = cluster.leader()
        if leader is None:
            return False
        rows = query(cluster.superuser_dsn(cluster.pg_pods[leader].ip),
                     "SELECT state FROM pg_stat_replication WHERE application_name = %s",
                     (cluster.pg_pods[node].name,))
        return bool(rows) and rows[0][0] == "streaming"
    cluster.wait(f"{cluster.pg_pods[node].name} to rejoin as a streaming replica", rejoined, timeout)
    with open(log_path, "rb") as fh:
        fh.seek(log_offset)
        log = fh.read().decode(errors="replace")
    if "running pg_rewind from" not in log:
        observed["rewind"] = "not needed"
    elif "pg_rewind exit code=0" in log:
        observed["rewind"] = "ran"
    else:
        observed["rewind"] = "failed"
    observed["recloned"] = "removing data directory" in log.lower() or "reinitializ" in log.lower()
    return observed


# ----------------------------------------------------------------------------------------------------------
# Any Job of a render (e.g. the config-apply Job), run against a running cluster
# ----------------------------------------------------------------------------------------------------------
JOB_HOST = 242  # the pod of a Job started with :func:`start_job`


def start_job(cluster: Cluster, objects: Sequence[KubeObject], component: str) -> PendingBootstrap:
    """Start the first container's command of the rendered Job of ``component`` (from ``objects``, e.g. a later
    render: what `helm upgrade` would create) in the background, the way :meth:`Cluster.start_bootstrap` runs
    the bootstrap Job: its ConfigMap volumes written out, its env resolved (Secret keys from the running
    cluster's Secret, as `lookup` keeps them on upgrade), the cluster's pod DNS names translated to the pods'
    addresses, run as the postgres user with the system python (Patroni's modules, like the image)."""
    chart = Chart(objects)
    job = chart.component("Job", component)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    root = cluster.tmp / f"{component}-{time.monotonic_ns()}"
    pod = Pod(root.name, cluster.block.host(JOB_HOST), root, namespace=cluster.ns)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        host = root / m["name"]
        host.mkdir(parents=True)
        pod.mounts[m["mountPath"]] = host
        if "configMap" in volumes[m["name"]]:
            for fname, content in chart.get("ConfigMap", volumes[m["name"]]["configMap"]["name"])["data"].items():
                (host / fname).write_text(content)
    _chown_tree(root)
    secrets = {name: {**data, **cluster.secrets.get(name, {})} for name, data in chart.secrets().items()}
    translate = Translator(pod.mounts, cluster.hosts, pod.ip)
    env = {**cluster.base_env(), **{k: translate(v) for k, v in container_env(container, pod, secrets).items()}}
    cmd = [translate(a) for a in container["command"] + (container.get("args") or [])]
    cmd[0] = SYSTEM_PYTHON if Path(cmd[0]).name.startswith("python") else cmd[0]
    popen = subprocess.Popen(_as_user(cmd), env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    pending = PendingBootstrap(popen, cluster.primary_service_ip())
    cluster.bootstraps.append(pending)  # stopped with the cluster if still running
    return pending


def run_job(cluster: Cluster, objects: Sequence[KubeObject], component: str, timeout: float = 300
            ) -> dict[str, Any]:
    """:func:`start_job` and wait: the last stdout line (JSON) plus returncode, stderr and the whole stdout."""
    return start_job(cluster, objects, component).result(timeout, what=f"the {component} Job")
