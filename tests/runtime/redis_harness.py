"""Run charts/nova-redis on real daemons, from the chart's rendered objects.

`helm template` renders the chart with `nodeAddresses` set to loopback addresses of an address block claimed
for this run (one per pod, 127.A.B.1.., HAProxy on 127.A.B.10: see netutil.py; a port that a wildcard listener
holds is moved with --set) and `masterProxy.bindAddress`. From the rendered objects this module takes, per pod:

- the files of every ConfigMap volume (configs and scripts: nothing is copied from the chart by hand),
- each container's command, environment (`fieldRef metadata.name` -> the pod name, `secretKeyRef` -> the
  rendered Secret, or unset when the ref is optional and the key is missing), preStop hooks and exec probes,

maps every volume mount to a directory under a temp dir, and starts the container commands as local
processes (Debian's redis-server, redis-sentinel and haproxy). Processes are stopped by PID on
``close()``, which the context manager and the test fixtures always call; it also removes the temp dir and
releases the address block. :func:`started` starts a harness again on a new block when a daemon's bind fails.

Used by tests/runtime/test_redis_*.py and bench/failover_redis.py.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import csv
import io
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import redis
import redis.sentinel
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.runtime import log_block, netutil, parsed_yaml, partition
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

CHART = helm.CHARTS_DIR / "nova-redis"
RELEASE = "nova"
NAMESPACE = "nova-redis"
POD_HOST = 1     # pod i -> <block>.(1 + i)
PROXY_HOST = 10  # HAProxy -> <block>.10
PORT_KEYS = ("redis.port", "sentinel.port", "masterProxy.healthPort")
BINARIES = ("redis-server", "redis-cli", "haproxy")


class HarnessError(RuntimeError):
    """The cluster did not reach the expected state; the message names what and shows the daemons' logs."""


def _chart_default(key: str) -> Any:
    value: Any = parsed_yaml((CHART / "values.yaml").read_text())
    for part in key.split("."):
        value = value[part]
    return value


def loopback_values(block: netutil.AddressBlock, replicas: int | None = None, prefix: str = "") -> list[str]:
    """The --set values that put the chart on ``block``: one address per pod, HAProxy's, and any of the
    chart's ports a wildcard listener holds moved to a free port. ``prefix``: the subchart's alias + "."
    (``redis.`` in the umbrella)."""
    n = int(_chart_default("replicas")) if replicas is None else replicas
    values = [f"{prefix}nodeAddresses={{{','.join(block.host(POD_HOST + i) for i in range(n))}}}",
              f"{prefix}masterProxy.bindAddress={block.host(PROXY_HOST)}"]
    for key in PORT_KEYS:
        default = int(_chart_default(key))
        port = netutil.port_for(default)
        if port != default:
            values.append(f"{prefix}{key}={port}")
    return values


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns a truthy value; raise HarnessError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (redis.RedisError, OSError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class ContainerStop:
    """How one container of a deleted pod stopped: its preStop hook's result (None: no hook, or it ran past
    the grace period), when the hook returned and when the process had exited (time.monotonic())."""

    hook: subprocess.CompletedProcess[str] | None
    hook_end: float
    stopped: float


@dataclass
class Container:
    """A container of the rendered pod spec, with paths mapped to local directories."""

    name: str
    spec: dict[str, Any]
    mounts: dict[str, Path]  # mountPath -> local dir

    def map_path(self, value: str) -> str:
        for mount in sorted(self.mounts, key=len, reverse=True):
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(self.mounts[mount]) + value[len(mount):]
        return value

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [self.map_path(a) for a in argv]


class RedisHarness:
    """Three Redis pods (redis + sentinel each) and the HAProxy write-safe endpoint on loopback addresses."""

    def __init__(
        self,
        *,
        set_values: Sequence[str] = (),
        replicas: int | None = None,
        workdir: Path | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        objects: Sequence[KubeObject] | None = None,
        block: netutil.AddressBlock | None = None,
        values: Sequence[Path | str] = (),
        pod_sources: bool = False,
    ) -> None:
        """``secrets``: Secrets that exist in the cluster but are not rendered (an ``auth.existingSecret``),
        name -> key -> plain value. ``workdir``: the parent of this harness's own temp dir (default the system
        temp dir). ``objects`` and ``block``: an existing render (e.g. the umbrella's redis subchart objects,
        rendered with :func:`loopback_values` of ``block``) instead of rendering charts/nova-redis here on a
        block claimed here. ``replicas``: pods (default the chart's) when rendering here. ``values``: values
        files for the render (e.g. :func:`production_values`). ``pod_sources`` (root only): each pod's processes
        run with a group id of their own and connect from the pod's own address (partition.pod_sources), so
        partition.partition can cut pods apart by address pair while clients and HAProxy (127.0.0.1) pass."""
        self._own_block = block is None
        self._sources: contextlib.ExitStack | None = None
        self.pod_gids: dict[int, int] = {}
        self.block = block or netutil.claim_block()
        self.procs: dict[str, Process] = {}
        self._polling: dict[tuple[str, int, float], redis.Redis] = {}
        self.secrets = {name: dict(data) for name, data in (secrets or {}).items()}
        self.workdir = Path(tempfile.mkdtemp(prefix="nova-redis-", dir=workdir))
        self._own_workdir = workdir is None
        try:
            self.objects = list(objects) if objects is not None else helm.render(
                CHART,
                values=values,
                set_values=[*loopback_values(self.block, replicas),
                            *([f"replicas={replicas}"] if replicas is not None else []), *set_values],
                release=RELEASE,
                namespace=NAMESPACE,
            )
            self._read_render()
            if pod_sources:
                self._start_pod_sources()
        except BaseException:
            self.close()
            raise

    def _start_pod_sources(self) -> None:
        a, b = (int(x) for x in self.block.prefix.split(".")[1:3])
        # A group id per pod, unique per address block (so per run): 1.3e9 + block * 256 + pod.
        self.pod_gids = {i: 1_300_000_000 + (a << 16) + (b << 8) + POD_HOST + i for i in range(len(self.addresses))}
        stack = contextlib.ExitStack()
        stack.enter_context(partition.pod_sources({gid: self.addresses[i] for i, gid in self.pod_gids.items()},
                                                  f"{self.block.prefix}.0/24"))
        self._sources = stack

    def _read_render(self) -> None:
        self.statefulset = self._one("StatefulSet")
        self.pod_spec = self.statefulset["spec"]["template"]["spec"]
        self.fullname = self.statefulset["metadata"]["name"]
        env = {e["name"]: e.get("value") for e in self._container_spec("redis").get("env", [])}
        self.redis_port = int(env["REDIS_PORT"])
        self.sentinel_port = int(env["SENTINEL_PORT"])
        self.master_set = str(env["SENTINEL_MASTER_SET"])
        self.password = self._password()
        # Sentinel's own password, as the sentinel container gets it (falls back like common.sh does).
        self.sentinel_password = self.secret_env("sentinel", "SENTINEL_PASSWORD") or self.password
        self.down_after_ms = self._sentinel_setting("down-after-milliseconds")
        self.addresses = self.env_value("redis", "NOVA_REDIS_NODES").split()
        self.proxy_address = self._proxy_bind_address()
        outside = [a for a in [*self.addresses, self.proxy_address] if not self.block.contains(a)]
        if outside:
            raise HarnessError(f"the render puts daemons on {', '.join(outside)}, outside the claimed block "
                               f"{self.block.prefix}.0/24: render with loopback_values(block)")

    def _proxy_bind_address(self) -> str:
        """The address of HAProxy's Redis frontend in the rendered haproxy.cfg (``bind <address>:<redis port>``)."""
        cfg = self._one("ConfigMap", f"{self.fullname}-master")["data"]["haproxy.cfg"]
        for line in cfg.splitlines():
            parts = line.split()
            if parts[:1] == ["bind"] and parts[1].endswith(f":{self.redis_port}"):
                return parts[1].rsplit(":", 1)[0]
        raise HarnessError(f"no `bind <address>:{self.redis_port}` in the rendered haproxy.cfg")

    # ---- rendered objects -------------------------------------------------------------------------------

    def _one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o.obj for o in self.objects if o.kind == kind and (name is None or o.name == name)]
        if len(found) != 1:
            raise HarnessError(f"expected one {kind}{' ' + name if name else ''} in the render, found {len(found)}")
        return found[0]

    def _container_spec(self, name: str, pod_spec: dict[str, Any] | None = None) -> dict[str, Any]:
        for c in (pod_spec or self.pod_spec)["containers"]:
            if c["name"] == name:
                return c
        raise HarnessError(f"no container {name!r} in the rendered pod spec")

    def _password(self) -> str | None:
        return self.secret_env("redis", "REDIS_PASSWORD")

    def secret_env(self, container: str, name: str) -> str | None:
        """The value of a container's env variable that comes from the rendered Secret (None if absent)."""
        for e in self._container_spec(container).get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and e["name"] == name:
                return self._secret_value(ref)
        return None

    def _secret_value(self, ref: dict[str, Any]) -> str | None:
        """A secretKeyRef resolved against the rendered Secret; None for an optional ref to a missing key."""
        if ref["name"] in self.secrets:
            given = self.secrets[ref["name"]]
            if ref["key"] in given:
                return given[ref["key"]]
            if ref.get("optional"):
                return None
            raise HarnessError(f"secretKeyRef {ref['name']}/{ref['key']}: the key is not in the Secret given to the harness")
        secrets = [o.obj for o in self.objects if o.kind == "Secret" and o.name == ref["name"]]
        data = secrets[0].get("data", {}) if secrets else {}
        if ref["key"] in data:
            return base64.b64decode(data[ref["key"]]).decode()
        if ref.get("optional"):
            return None
        raise HarnessError(f"secretKeyRef {ref['name']}/{ref['key']} is not in the rendered objects and not optional")

    def env_value(self, container: str, name: str) -> str:
        """A plain (``value:``) env variable of a rendered container."""
        for e in self._container_spec(container).get("env", []):
            if e["name"] == name and "value" in e:
                return str(e["value"])
        raise HarnessError(f"container {container} has no env {name} with a plain value")

    def _sentinel_setting(self, key: str) -> int:
        cm = self._one("ConfigMap", f"{self.fullname}-config")
        for line in cm["data"]["sentinel-master.conf"].splitlines():
            parts = line.split()
            if parts[:2] == ["sentinel", key]:
                return int(parts[3])
        raise HarnessError(f"sentinel {key} not found in the rendered sentinel-master.conf")

    def rendered_config(self, filename: str) -> str:
        return str(self._one("ConfigMap", f"{self.fullname}-config")["data"][filename])

    # ---- pods and processes -----------------------------------------------------------------------------

    def pod_name(self, i: int) -> str:
        return f"{self.fullname}-{i}"

    def _materialise(self, pod_dir: Path, pod_spec: dict[str, Any], container: dict[str, Any]) -> Container:
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for m in container.get("volumeMounts", []):
            local = pod_dir / m["name"]
            vol = volumes.get(m["name"], {})
            if "configMap" in vol:
                local.mkdir(parents=True, exist_ok=True)
                cm = self._one("ConfigMap", vol["configMap"]["name"])
                for fname, content in cm.get("data", {}).items():
                    target = local / fname
                    # Both containers of a pod share the volume: never rewrite a file a running script reads.
                    if not target.exists() or target.read_text() != content:
                        tmp = target.with_name(f".{fname}.tmp")
                        tmp.write_text(content)
                        tmp.replace(target)
            else:  # emptyDir or a volumeClaimTemplate
                local.mkdir(parents=True, exist_ok=True)
            mounts[m["mountPath"]] = local
        return Container(container["name"], container, mounts)

    def _env(self, c: Container, pod_name: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
        for e in c.spec.get("env", []):
            if "value" in e:
                env[e["name"]] = c.map_path(str(e["value"]))
                continue
            src = e.get("valueFrom") or {}
            if (src.get("fieldRef") or {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = pod_name
            elif "secretKeyRef" in src:
                value = self._secret_value(src["secretKeyRef"])
                if value is not None:
                    env[e["name"]] = value
            else:
                raise HarnessError(f"container {c.name}: env {e['name']} has a source the harness cannot map: {src}")
        return env

    def _container(self, i: int, name: str) -> tuple[Container, dict[str, str]]:
        c = self._materialise(self.workdir / self.pod_name(i), self.pod_spec, self._container_spec(name))
        return c, self._env(c, self.pod_name(i))

    def _spawn(self, key: str, argv: list[str], env: dict[str, str], group: int | None = None) -> Process:
        old = self.procs.get(key)
        if old and old.alive():
            raise HarnessError(f"{key} is already running (pid {old.pid})")
        log = self.workdir / "logs" / f"{key}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "ab")  # noqa: SIM115 - the child owns it
        try:
            popen = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=log.parent, group=group, extra_groups=[] if group is not None else None)
        finally:
            fh.close()
        proc = Process(key, popen, log)
        self.procs[key] = proc
        return proc

    def start_redis(self, i: int) -> Process:
        c, env = self._container(i, "redis")
        return self._spawn(f"redis-{i}", c.argv(c.spec["command"] + c.spec.get("args", [])), env, self.pod_gids.get(i))

    def start_sentinel(self, i: int) -> Process:
        c, env = self._container(i, "sentinel")
        return self._spawn(f"sentinel-{i}", c.argv(c.spec["command"] + c.spec.get("args", [])), env, self.pod_gids.get(i))

    def start_pod(self, i: int) -> None:
        self.start_sentinel(i)
        self.start_redis(i)

    def start_proxy(self) -> Process:
        dep = self._one("Deployment", f"{self.fullname}-master")
        spec = dep["spec"]["template"]["spec"]
        c = self._materialise(self.workdir / "proxy", spec, self._container_spec("haproxy", spec))
        env = self._env(c, "proxy")
        return self._spawn("proxy", c.argv(c.spec["command"] + c.spec.get("args", [])), env)

    def binds(self, key: str) -> list[tuple[str, int]]:
        """The address:port pairs process ``key`` (redis-<i>, sentinel-<i>, proxy) listens on."""
        if key == "proxy":
            return [(self.proxy_address, self.redis_port), (self.proxy_address, self._proxy_health_port())]
        name, i = key.rsplit("-", 1)
        return [(self.addresses[int(i)], self.redis_port if name == "redis" else self.sentinel_port)]

    def _exited_log(self, key: str) -> str | None:
        proc = self.procs[key]
        return None if proc.alive() else proc.log.read_text(errors="replace")

    def _check_free(self, keys: Sequence[str]) -> None:
        for key in keys:
            for address, port in self.binds(key):
                if netutil.blocking(address, port):
                    raise netutil.BindError(address, port, netutil.holder(address, port))

    def start_all(self, proxy: bool = True, order: Sequence[int] | None = None) -> None:
        """Start every process at once (no waiting between them), like a Parallel StatefulSet. An address a
        process needs that is taken (before, or when the daemon binds) raises netutil.BindError naming it and
        its holder, after stopping what this call started."""
        keys = [k for i in range(len(self.addresses)) for k in (f"sentinel-{i}", f"redis-{i}")]
        keys = [k for k in keys + (["proxy"] if proxy else []) if not (k in self.procs and self.procs[k].alive())]
        self._check_free(keys)
        for i in order if order is not None else range(len(self.addresses)):
            self.start_sentinel(i)
            self.start_redis(i)
        if proxy:
            self.start_proxy()
        try:
            netutil.wait_listening({k: self.binds(k) for k in keys}, self._exited_log, lambda k: self.procs[k].pid)
        except netutil.BindError:
            for key in keys:
                self.kill(key)
            raise

    def signal(self, key: str, sig: int) -> None:
        proc = self.procs[key]
        if proc.alive():
            os.kill(proc.pid, sig)

    def kill_pod(self, i: int) -> None:
        """SIGKILL both processes of pod i (a crashed pod) and reap them."""
        for key in (f"redis-{i}", f"sentinel-{i}"):
            if key in self.procs:
                self.signal(key, signal.SIGKILL)
                self.procs[key].popen.wait(timeout=10)

    def kill(self, key: str) -> None:
        """SIGKILL process ``key``'s whole process group (its start script's helpers too) and reap it."""
        proc = self.procs.get(key)
        if proc is None:
            return
        # Each process leads its own session (start_new_session): the group holds it and any helper a start
        # script is still running (redis-cli, timeout). Killed by our own child's PID only, and only while the
        # leader is not yet reaped, so the group id cannot belong to anyone else.
        if proc.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)

    def stop(self, key: str, timeout: float = 10) -> None:
        proc = self.procs.get(key)
        if proc is None or not proc.alive():
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.popen.wait(timeout=10)

    def run_prestop(self, i: int, timeout: float = 60, container: str = "redis") -> subprocess.CompletedProcess[str]:
        """Run one container's preStop hook of pod i (no process is stopped)."""
        c, env = self._container(i, container)
        argv = c.argv(c.spec["lifecycle"]["preStop"]["exec"]["command"])
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.workdir, group=self.pod_gids.get(i))

    def terminate_pod(self, i: int) -> dict[str, ContainerStop]:
        """Delete pod i the way the kubelet does: every container's preStop hook starts at the same moment;
        each container gets SIGTERM as soon as its OWN hook returns (at once when it has none), then SIGKILL
        when the grace period ends. Returns, per container, the hook's result and the times it ended and
        the process exited (time.monotonic())."""
        grace = float(self.pod_spec.get("terminationGracePeriodSeconds", 30))
        t0 = time.monotonic()
        results: dict[str, ContainerStop] = {}

        def one(name: str) -> None:
            spec = self._container_spec(name)
            hook = ((spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
            done: subprocess.CompletedProcess[str] | None = None
            if hook:
                try:
                    done = self.run_prestop(i, timeout=grace, container=name)
                except subprocess.TimeoutExpired:
                    done = None
            hook_end = time.monotonic()
            self.stop(f"{name}-{i}", timeout=max(0.1, grace - (hook_end - t0)))
            results[name] = ContainerStop(done, hook_end, time.monotonic())

        threads = [threading.Thread(target=one, args=(c["name"],))
                   for c in self.pod_spec["containers"] if f"{c['name']}-{i}" in self.procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=grace + 20)
        return results

    def run_probe(self, i: int, container: str, probe: str) -> subprocess.CompletedProcess[str]:
        """Run an exec probe (``startupProbe``, ``readinessProbe``, ``livenessProbe``) of a container of pod i."""
        c, env = self._container(i, container)
        argv = c.argv(c.spec[probe]["exec"]["command"])
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10, check=False,
                              cwd=self.workdir, group=self.pod_gids.get(i))

    def close(self) -> None:
        """Kill every process group, remove the temp dir (kept under a given ``workdir``), release the block."""
        for client in self._polling.values():
            with contextlib.suppress(Exception):
                client.close()
        self._polling.clear()
        try:
            for key in list(self.procs):
                self.kill(key)
        finally:
            if self._sources is not None:
                self._sources.close()
                self._sources = None
            if self._own_workdir and not os.environ.get("NOVA_KEEP_TMP"):
                shutil.rmtree(self.workdir, ignore_errors=True)
            if self._own_block:
                self.block.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logs(self, tail: int = 15) -> str:
        return "\n".join(log_block(proc.name, f"pid {proc.pid}, {'running' if proc.alive() else 'exited'}", proc.log, tail)
                         for proc in self.procs.values())

    # ---- clients --------------------------------------------------------------------------------------------

    def client(self, i: int, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.addresses[i], port=self.redis_port, password=self.password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0))

    def sentinel_client(self, i: int, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.addresses[i], port=self.sentinel_port, password=self.sentinel_password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0))

    def proxy_client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.proxy_address, port=self.redis_port, password=self.password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0))

    def sentinel(self, timeout: float = 0.5) -> redis.sentinel.Sentinel:
        """A Sentinel-aware client, as a Nova service would use (REDIS_SENTINEL_ADDRS, master set, the Sentinel
        password for the Sentinels and the Redis password for the master)."""
        # No retries inside the client (redis-py retries with a growing backoff by default): the workload
        # retries every 20 ms itself, so the measured time is the cluster's, not the client's backoff.
        return redis.sentinel.Sentinel(
            [(a, self.sentinel_port) for a in self.addresses],
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": timeout, "socket_connect_timeout": timeout,
                             "retry": Retry(NoBackoff(), 0)},
            password=self.password, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def index_of(self, host: str) -> int:
        return self.addresses.index(host)

    def _ask(self, kind: str, i: int, call: Callable[[redis.Redis], Any], timeout: float = 1.0) -> Any:
        """``call`` on a kept client of node ``i`` (kind "redis" or "sentinel"): the waits poll these reads ten times
        a second, and a new client per read was a new connection, AUTH (and TLS handshake) each time. A
        connection error (the node restarted since) is answered by a fresh client, so a read fails only as a
        read on a new client would; a timeout is not retried."""
        make = (lambda: self.client(i, timeout)) if kind == "redis" else (lambda: self.sentinel_client(i, timeout))
        key = (kind, i, timeout)
        client = self._polling.get(key)
        if client is not None:
            try:
                return call(client)
            except redis.ConnectionError:
                pass  # not closed here: another thread may be reading through it; dropped below
        self._polling[key] = client = make()
        return call(client)

    def role(self, i: int, timeout: float = 1.0) -> dict[str, Any]:
        return self._ask("redis", i, lambda c: c.info("replication"), timeout)

    def sentinel_views(self) -> list[str | None]:
        """The master address each Sentinel names (None when it does not answer)."""
        views: list[str | None] = []
        for i in range(len(self.addresses)):
            try:
                addr = self._ask("sentinel", i, lambda c: c.execute_command("SENTINEL", "get-master-addr-by-name",
                                                                           self.master_set))
                views.append(addr[0] if addr else None)
            except (redis.RedisError, OSError):
                views.append(None)
        return views

    def stable_master(self) -> int | None:
        """Index of the master when the cluster is settled, else None. Settled: every Sentinel names the same
        master, it is the only node with role master, every other node replicates it with the link up and no
        sync running, and every Sentinel knows all replicas and all other Sentinels."""
        n = len(self.addresses)
        views = self.sentinel_views()
        if None in views or len(set(views)) != 1:
            return None
        master = self.index_of(str(views[0]))
        for i in range(n):
            info = self.role(i)
            if i == master:
                if info.get("role") != "master" or int(info.get("connected_slaves", 0)) != n - 1:
                    return None
            elif (info.get("role") != "slave" or info.get("master_host") != self.addresses[master]
                  or info.get("master_link_status") != "up" or int(info.get("master_sync_in_progress", 1)) != 0):
                return None
        for i in range(n):
            m = dict(zip(*[iter(self._ask("sentinel", i, lambda c: c.execute_command("SENTINEL", "master",
                                                                                   self.master_set)))] * 2))
            if int(m["num-slaves"]) != n - 1 or int(m["num-other-sentinels"]) != n - 1:
                return None
        return master

    def wait_stable(self, timeout: float = 60) -> int:
        try:
            return int(wait_until(lambda: self._plus_one(self.stable_master()), timeout, "one master, replicas in sync, Sentinels agreeing")) - 1
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.logs()}") from None

    @staticmethod
    def _plus_one(v: int | None) -> int | None:
        return None if v is None else v + 1

    def proxy_servers(self) -> list[dict[str, str]]:
        """HAProxy's stats CSV: one row per server (pxname, svname, status, check_duration, ...)."""
        port = self._proxy_health_port()
        with urllib.request.urlopen(f"http://{self.proxy_address}:{port}/stats;csv", timeout=2) as resp:
            text = resp.read().decode().lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row["svname"] not in ("FRONTEND", "BACKEND")]

    def proxy_status(self) -> dict[str, str]:
        """HAProxy's view: node backend (``node<i>``) -> its server's status (UP, DOWN, ...), from the stats CSV."""
        return {row["pxname"]: row["status"] for row in self.proxy_servers() if re.fullmatch(r"node\d+", row["pxname"])}

    def proxy_selected(self) -> list[int]:
        """The nodes the -master frontend selects right now, by its own rule: the server of backend node<i> UP
        and a majority of the servers of backend node<i>_votes (one per Sentinel) UP."""
        rows = self.proxy_servers()
        votes = {i: sum(1 for r in rows if r["pxname"] == f"node{i}_votes" and r["status"].startswith("UP"))
                 for i in range(len(self.addresses))}
        majority = len(self.addresses) // 2 + 1
        return sorted(int(r["pxname"][4:]) for r in rows if re.fullmatch(r"node\d+", r["pxname"])
                      and r["status"].startswith("UP") and votes[int(r["pxname"][4:])] >= majority)

    def _proxy_spec(self) -> dict[str, Any]:
        return self._one("Deployment", f"{self.fullname}-master")["spec"]["template"]["spec"]

    def _proxy_health_port(self) -> int:
        for p in self._container_spec("haproxy", self._proxy_spec())["ports"]:
            if p["name"] == "health":
                return int(p["containerPort"])
        raise HarnessError("haproxy container has no health port")


# ---- workload: acknowledged writes through Sentinel ------------------------------------------------------


@dataclass
class WriteLog:
    acked: dict[str, str] = field(default_factory=dict)   # key -> value, acknowledged by >= 1 replica (WAIT)
    failures: list[float] = field(default_factory=list)   # monotonic times of failed writes
    errors: list[tuple[float, str]] = field(default_factory=list)  # (time, error) of failed writes
    successes: list[float] = field(default_factory=list)  # monotonic times of acknowledged writes


class Writer(threading.Thread):
    """Writes numbered keys through a Sentinel-aware client; a write counts once WAIT 1 confirms a replica has it."""

    def __init__(self, harness: RedisHarness, prefix: str, interval: float = 0.02, wait_ms: int = 500) -> None:
        super().__init__(daemon=True)
        self.harness = harness
        self.prefix = prefix
        self.interval = interval
        self.wait_ms = wait_ms
        self.log = WriteLog()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        sentinel = self.harness.sentinel()
        master = sentinel.master_for(self.harness.master_set, socket_timeout=0.5, socket_connect_timeout=0.5)
        n = 0
        while not self._stop_event.is_set():
            n += 1
            key, value = f"{self.prefix}:{n}", f"v{n}"
            try:
                pipe = master.pipeline(transaction=False)
                pipe.set(key, value)
                pipe.execute_command("WAIT", 1, self.wait_ms)
                _, replicas = pipe.execute()
                if int(replicas) >= 1:
                    with self._lock:
                        self.log.acked[key] = value
                        self.log.successes.append(time.monotonic())
                else:
                    self.log.failures.append(time.monotonic())
                    self.log.errors.append((time.monotonic(), f"WAIT 1 returned {replicas}"))
            except (redis.RedisError, OSError) as exc:
                self.log.failures.append(time.monotonic())
                self.log.errors.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                master.connection_pool.disconnect()
            time.sleep(self.interval)

    def first_success_after(self, t: float) -> float | None:
        with self._lock:
            return next((s for s in self.log.successes if s > t), None)

    def stop(self) -> WriteLog:
        self._stop_event.set()
        self.join(timeout=10)
        return self.log


def missing_writes(harness: RedisHarness, log: WriteLog, node: int) -> list[str]:
    """Acknowledged keys that node ``node`` does not hold with the acknowledged value."""
    c = harness.client(node, timeout=5)
    keys = list(log.acked)
    missing: list[str] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for k, v in zip(chunk, c.mget(chunk)):
            if v != log.acked[k]:
                missing.append(k)
    return missing


def kill_master_and_measure(harness: RedisHarness, label: str, warmup: float = 1.0) -> dict[str, Any]:
    """SIGKILL the master pod (redis and its Sentinel) while a writer runs; measure the time from the kill to
    the first acknowledged write on the new master, and count acknowledged writes the new master lacks."""
    old = harness.wait_stable()
    writer = Writer(harness, label)
    writer.start()
    wait_until(lambda: len(writer.log.acked) >= 20, 30, "20 acknowledged writes before the kill")
    time.sleep(warmup)
    t_kill = time.monotonic()
    harness.kill_pod(old)
    recovered = wait_until(lambda: writer.first_success_after(t_kill), 60, "a write acknowledged after the kill")
    time.sleep(0.5)
    log = writer.stop()
    def promoted() -> tuple[int] | None:  # a tuple: node 0 may be the new master
        # A Sentinel that has not yet heard of the promotion still names the killed master: take a view that
        # names another node (the writer's acknowledged write already went to it).
        for i, v in enumerate(harness.sentinel_views()):
            if i != old and v and harness.index_of(v) != old:
                return (harness.index_of(v),)
        return None
    (new,) = wait_until(promoted, 30, "a Sentinel naming the new master")
    lost = missing_writes(harness, log, new)
    return {
        "old_master": old,
        "new_master": new,
        "failover_s": round(recovered - t_kill, 3),
        "acked_writes": len(log.acked),
        "acked_writes_lost": len(lost),
        "lost_keys": lost[:10],
        "log": log,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    times = [r["failover_s"] for r in runs]
    return {
        "failover_s": round(statistics.median(times), 3),
        "failover_s_max": max(times),
        "failover_s_all": times,
        "acked_writes": sum(r["acked_writes"] for r in runs),
        "acked_writes_lost": sum(r["acked_writes_lost"] for r in runs),
        "kills": len(runs),
    }


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def started(make: Callable[[], RedisHarness], start: Callable[[RedisHarness], Any] | None = None,
            attempts: int = 3) -> RedisHarness:
    """``make()`` a harness and ``start`` it (default: every process, then settled); when a daemon cannot
    bind, close it and do both again on a new address block (netutil.retry_on_bind). The caller closes it."""
    def attempt() -> RedisHarness:
        h = make()
        try:
            if start is None:
                h.start_all()
                h.wait_stable()
            else:
                start(h)
        except BaseException:
            h.close()
            raise
        return h
    return netutil.retry_on_bind(attempt, attempts, what="the Redis pods")


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[RedisHarness]:
    """A started, settled cluster; always cleaned up."""
    h = started(lambda: RedisHarness(**kwargs))
    try:
        yield h
    finally:
        h.close()


# ---- the fault matrix (bench/faults_redis.py, tests/runtime/test_redis_faults.py) -------------------------

def production_values(directory: Path) -> Path:
    """The production profile's ``redis`` block (and ``global``) as a values file of charts/nova-redis: the profile
    with its example site overlay (tools/charts.py ``profile_values``: production alone names no backup
    repository and does not render), with TLS off: the fault matrix measures the failover logic on plain ports
    (cert-manager's certificates do not exist here); tests/runtime/test_tls.py runs the failover with the
    production TLS settings and test certificates. The backup CronJob is rendered but not run here."""
    profile = chart_files.merged_values(chart_files.profile_values("production"))
    block = dict(profile["redis"])
    if profile.get("global"):
        block["global"] = {k: v for k, v in profile["global"].items() if k != "tls"}
    path = directory / "production-redis-values.yaml"
    path.write_text(yaml.safe_dump(block, sort_keys=False))
    return path


@dataclass
class ProxyWrite:
    """One write through the -master endpoint: when it returned, which node answered (CLIENT INFO laddr),
    whether the node accepted the SET, how many replicas WAIT confirmed, and the error if any."""

    key: str
    t: float
    node: int | None
    accepted: bool
    replicas: int
    error: str | None = None
    sent: float = 0.0  # when the pipeline was sent (``t`` is when it returned)

    @property
    def acked(self) -> bool:
        return self.accepted and self.replicas >= 1


class ProxyWriter(threading.Thread):
    """Writes numbered keys through HAProxy (``<fullname>-master``), as clients do; each write is one pipeline
    ``CLIENT INFO; SET; WAIT 1 <wait_ms>`` on one connection, so the node that accepted it is known. A write is
    acknowledged when SET returned OK and WAIT confirmed a replica has it."""

    def __init__(self, harness: RedisHarness, prefix: str, interval: float = 0.02, wait_ms: int = 500) -> None:
        super().__init__(daemon=True)
        self.harness, self.prefix, self.interval, self.wait_ms = harness, prefix, interval, wait_ms
        self.writes: list[ProxyWrite] = []
        self._stop_event = threading.Event()

    def _node(self, info: Any) -> int | None:
        if not isinstance(info, str) or "laddr=" not in info:
            return None
        host = info.split("laddr=")[1].split()[0].rsplit(":", 1)[0]
        return self.harness.addresses.index(host) if host in self.harness.addresses else None

    def run(self) -> None:
        client = self.harness.proxy_client(timeout=1.0)
        n = 0
        while not self._stop_event.is_set():
            n += 1
            key = f"{self.prefix}:{n}"
            sent = time.monotonic()
            try:
                pipe = client.pipeline(transaction=False)
                pipe.execute_command("CLIENT", "INFO")
                pipe.set(key, f"v{n}")
                pipe.execute_command("WAIT", 1, self.wait_ms)
                info, set_reply, wait_reply = pipe.execute(raise_on_error=False)
                accepted = set_reply is True
                replicas = int(wait_reply) if isinstance(wait_reply, int) else 0
                error = None if accepted else f"{type(set_reply).__name__}: {set_reply}"
                self.writes.append(ProxyWrite(key, time.monotonic(), self._node(info), accepted, replicas, error,
                                              sent))
            except (redis.RedisError, OSError) as exc:
                self.writes.append(ProxyWrite(key, time.monotonic(), None, False, 0, f"{type(exc).__name__}: {exc}",
                                              sent))
                client.connection_pool.disconnect()
            time.sleep(self.interval)

    def acked(self) -> dict[str, str]:
        return {w.key: f"v{w.key.rsplit(':', 1)[1]}" for w in list(self.writes) if w.acked}

    def first_ack_after(self, t: float) -> float | None:
        """When the first write sent after ``t`` was acknowledged (a write in flight at ``t`` does not count)."""
        return next((w.t for w in list(self.writes) if w.acked and w.sent > t), None)

    def stop(self) -> list[ProxyWrite]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.writes


class NodeProbe(threading.Thread):
    """Writes straight to every node (a client that still reaches each one) every ``interval`` and records, per
    node, when a write was accepted: the data for the window in which two nodes took writes."""

    def __init__(self, harness: RedisHarness, prefix: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.harness, self.prefix, self.interval = harness, prefix, interval
        self.accepts: dict[int, list[float]] = {i: [] for i in range(len(harness.addresses))}
        self.sent: dict[int, list[float]] = {i: [] for i in range(len(harness.addresses))}  # of each accepted write
        self._stop_event = threading.Event()

    def run(self) -> None:
        clients = {i: self.harness.client(i, timeout=0.3) for i in self.accepts}
        n = 0
        while not self._stop_event.is_set():
            n += 1
            for i, c in clients.items():
                try:
                    sent = time.monotonic()
                    if c.set(f"{self.prefix}:probe:{i}:{n}", "1") is True:
                        self.accepts[i].append(time.monotonic())
                        self.sent[i].append(sent)
                except (redis.RedisError, OSError):
                    c.connection_pool.disconnect()
            time.sleep(self.interval)

    def stop(self) -> dict[int, list[float]]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.accepts


@dataclass
class EndpointSample:
    t: float
    up: list[int]                      # nodes the -master frontend selects (RedisHarness.proxy_selected)
    roles: dict[int, str | None]       # the role each UP node reports right after (None: no answer)


class EndpointSampler(threading.Thread):
    """Every ``interval`` (100 ms): the set of nodes the -master endpoint selects (from HAProxy's stats, by the
    frontend's rule: node backend UP and named by a majority of the Sentinels) and the role each of them reports."""

    def __init__(self, harness: RedisHarness, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.harness, self.interval = harness, interval
        self.samples: list[EndpointSample] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            t = time.monotonic()
            try:
                up: list[int] | None = self.harness.proxy_selected()
            except OSError:
                up = None
            if up is not None:
                roles: dict[int, str | None] = {}
                for i in up:
                    try:
                        roles[i] = str(self.harness.role(i, timeout=0.2).get("role"))
                    except (redis.RedisError, OSError):
                        roles[i] = None
                self.samples.append(EndpointSample(t, up, roles))
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def stop(self) -> list[EndpointSample]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.samples


class SentinelEvents:
    """Every Sentinel's event stream (PSUBSCRIBE *): (time, sentinel index, channel, message)."""

    def __init__(self, harness: RedisHarness) -> None:
        self.harness = harness
        self.events: list[tuple[float, int, str, str]] = []
        self._stop_event = threading.Event()
        self._threads = [threading.Thread(target=self._listen, args=(i,), daemon=True) for i in range(len(harness.addresses))]
        self._ready = threading.Barrier(len(self._threads) + 1, timeout=10)

    def _listen(self, i: int) -> None:
        """Follow Sentinel i's events; when it is killed, subscribe again once it is back (a restart)."""
        first = True
        while not self._stop_event.is_set():
            pubsub = self.harness.sentinel_client(i, timeout=5).pubsub()
            try:
                try:
                    pubsub.psubscribe("*")
                    pubsub.get_message(timeout=2)
                finally:
                    if first:
                        first = False
                        with contextlib.suppress(threading.BrokenBarrierError):
                            self._ready.wait()
                while not self._stop_event.is_set():
                    msg = pubsub.get_message(timeout=0.05)
                    if msg and msg.get("type") == "pmessage":
                        self.events.append((time.monotonic(), i, str(msg["channel"]), str(msg["data"])))
            except (redis.RedisError, OSError):
                self._stop_event.wait(0.2)  # this Sentinel is down: try again
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        for t in self._threads:
            t.join(timeout=5)

    def wait_for(self, channel: str, after: float, timeout: float) -> tuple[float, int, str, str]:
        """The first event on ``channel`` after ``after``; HarnessError on timeout."""
        return wait_until(lambda: next((e for e in list(self.events) if e[2] == channel and e[0] > after), None),
                          timeout, f"a Sentinel to announce {channel}", interval=0.005)


def accepting_periods(times: Sequence[float], gap: float = 0.5) -> list[tuple[float, float]]:
    """Runs of accepted writes on one node: consecutive accepts less than ``gap`` apart form one period."""
    periods: list[tuple[float, float]] = []
    for t in sorted(times):
        if periods and t - periods[-1][1] < gap:
            periods[-1] = (periods[-1][0], t)
        else:
            periods.append((t, t))
    return periods


def dual_write_window(accepts: Mapping[int, Sequence[float]], gap: float = 0.5) -> float:
    """The longest time in which two nodes both accepted writes (overlap of their accepting periods)."""
    periods = {i: accepting_periods(ts, gap) for i, ts in accepts.items()}
    longest = 0.0
    nodes = sorted(periods)
    for ai, a in enumerate(nodes):
        for b in nodes[ai + 1:]:
            for s1, e1 in periods[a]:
                for s2, e2 in periods[b]:
                    longest = max(longest, min(e1, e2) - max(s1, s2))
    return longest


@dataclass
class FaultRecorder:
    """Everything a fault is measured with, started before the fault and stopped after the cluster settled:
    the writer through -master, the per-node probe, the endpoint sampler and the Sentinel event streams."""

    harness: RedisHarness
    label: str
    writer: ProxyWriter = field(init=False)
    probe: NodeProbe = field(init=False)
    sampler: EndpointSampler = field(init=False)
    events: SentinelEvents = field(init=False)

    def __post_init__(self) -> None:
        self.writer = ProxyWriter(self.harness, self.label)
        self.probe = NodeProbe(self.harness, self.label)
        self.sampler = EndpointSampler(self.harness)
        self.events = SentinelEvents(self.harness)

    def __enter__(self) -> Self:
        self.events.__enter__()
        for t in (self.sampler, self.probe, self.writer):
            t.start()
        wait_until(lambda: sum(w.acked for w in list(self.writer.writes)) >= 20, 30,
                   "20 acknowledged writes through the -master endpoint before the fault")
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.stop()
        self.probe.stop()
        self.sampler.stop()
        self.events.__exit__()

    def wait_recovered(self, t_fault: float, timeout: float = 90) -> float:
        try:
            return float(wait_until(lambda: self.writer.first_ack_after(t_fault), timeout,
                                    "a write acknowledged through the -master endpoint after the fault"))
        except HarnessError as exc:
            samples = list(self.sampler.samples)
            writes = list(self.writer.writes)
            raise HarnessError("\n".join([
                str(exc), "endpoint:", *_changes([(x.t - t_fault, str(x.up)) for x in samples if x.t >= t_fault - 0.5]),
                "writer:", *_changes([(w.t - t_fault, _outcome(w)) for w in writes if w.t >= t_fault - 0.5]),
                "Sentinel events:", *[f"{t - t_fault:+.2f}s s{i} {ch} {data}" for t, i, ch, data in list(self.events.events)
                                      if t >= t_fault - 1][:80],
                self.harness.logs(25)])) from None

    def result(self, t_fault: float, old_master: int, final_master: int, fault_done: float | None = None
               ) -> dict[str, Any]:
        """The per-run result: recovery_s, acked_lost, dual_write_window_s, endpoint_violations, and extras.
        ``old_master_accepted_after_fault_s``: when the old master accepted the last write *sent* after
        ``fault_done`` (the moment the fault had taken effect, e.g. the kill reaped; default ``t_fault``), in seconds
        after ``t_fault``; 0 when none. A write already on its way when the fault struck does not count."""
        writes = list(self.writer.writes)
        acked = [w for w in writes if w.acked]
        # The outage: the longest gap between acknowledged writes that ends after the fault.
        times = [w.t for w in acked]
        gaps = [(b - a, b) for a, b in itertools.pairwise(times) if b > t_fault]
        longest, resumed = max(gaps) if gaps else (0.0, t_fault)
        final = self.harness.client(final_master, timeout=5)
        keys = [w.key for w in writes if w.accepted]
        present: dict[str, str | None] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            present.update(zip(chunk, final.mget(chunk)))
        lost = [w.key for w in acked if present.get(w.key) != f"v{w.key.rsplit(':', 1)[1]}"]
        unacked_lost = [w.key for w in writes if w.accepted and not w.acked and present.get(w.key) is None]
        accepts: dict[int, list[float]] = {i: list(ts) for i, ts in self.probe.accepts.items()}
        for w in writes:
            if w.accepted and w.node is not None:
                accepts[w.node].append(w.t)
        since = t_fault if fault_done is None else fault_done
        old_accepts = [t for t, sent in zip(self.probe.accepts[old_master], self.probe.sent[old_master], strict=True)
                       if sent > since]
        old_accepts += [w.t for w in writes if w.accepted and w.node == old_master and w.sent > since]
        samples = list(self.sampler.samples)
        two = [s for s in samples if len(s.up) > 1]
        sample_times = [x.t for x in samples]

        def two_up_at(t: float) -> bool:  # the samples just before and just after both show two UP
            i = bisect.bisect_right(sample_times, t)
            return 0 < i < len(samples) and len(samples[i - 1].up) > 1 and len(samples[i].up) > 1
        replica = [s for s in samples if any(r == "slave" for r in s.roles.values())]
        return {
            "recovery_s": round(resumed - t_fault, 3),
            "acked_lost": len(lost),
            "dual_write_window_s": round(dual_write_window(accepts), 3),
            "endpoint_violations": len(two) + len(replica),
            "acked_writes": len(acked),
            "lost_keys": lost[:10],
            "longest_ack_gap_s": round(longest, 3),
            "old_master": old_master,
            "final_master": final_master,
            "old_master_accepted_after_fault_s": round(max(old_accepts) - t_fault, 3) if old_accepts else 0.0,
            "unacked_accepted_lost": len(unacked_lost),
            "writes_routed_to_replica": sum(1 for w in writes if w.error and "READONLY" in w.error),
            "endpoint_samples": len(samples),
            "endpoint_two_nodes_samples": len(two),
            "accepted_through_endpoint_while_two_up": sum(1 for w in writes if w.accepted and two_up_at(w.t)),
            "endpoint_replica_samples": len(replica),
            "endpoint_max_gap_s": round(max((b.t - a.t for a, b in itertools.pairwise(samples)), default=0.0), 3),
            "endpoint_changes": _changes([(x.t - t_fault, str(x.up)) for x in samples if x.t >= t_fault - 0.5]),
            "writer_timeline": _changes([(w.t - t_fault, _outcome(w)) for w in writes if w.t >= t_fault - 0.5]),
            "sentinel_events": [f"{t - t_fault:+.2f}s s{i} {ch} {data}" for t, i, ch, data in self.events.events
                                if ch in ("+sdown", "+odown", "+elected-leader", "+selected-slave", "+promoted-slave",
                                          "+switch-master", "+failover-end", "-failover-abort-not-elected",
                                          "-failover-abort-slave-timeout", "+failover-end-for-timeout", "+convert-to-slave",
                                          "+try-failover", "-odown", "-sdown") and t >= t_fault - 1][:100],
        }


def _outcome(w: ProxyWrite) -> str:
    if w.acked:
        return f"acked by node{w.node}"
    if w.accepted:
        return f"accepted by node{w.node}, WAIT 0"
    return (w.error or "?").split(":", 1)[0] if not w.error or "Error:" not in w.error else \
        w.error.split(" ", 2)[0] + " " + w.error.split(" ", 2)[1][:20]


def _changes(points: Sequence[tuple[float, str]]) -> list[str]:
    """``+t.ts..+t.ts state (n)`` for each run of equal states."""
    runs: list[list[Any]] = []
    for t, state in points:
        if runs and runs[-1][2] == state:
            runs[-1][1] = t
            runs[-1][3] += 1
        else:
            runs.append([t, t, state, 1])
    return [f"{a:+.2f}..{b:+.2f}s {state} ({n})" for a, b, state, n in runs][:60]


def _settle(h: RedisHarness, timeout: float = 90) -> int:
    """Wait until the cluster is settled and HAProxy marks only the master UP; the master's index."""
    master = h.wait_stable(timeout)
    want = {f"node{i}": ("UP" if i == master else "DOWN") for i in range(len(h.addresses))}
    wait_until(lambda: h.proxy_status() == want, 30, f"HAProxy to mark only node{master} UP")
    return master


def _new_master_named(h: RedisHarness, old: int, by: Sequence[int]) -> bool:
    views = h.sentinel_views()
    named = {views[i] for i in by}
    return len(named) == 1 and None not in named and h.addresses[old] not in named


def fault_master_kill(h: RedisHarness, label: str) -> dict[str, Any]:
    """SIGKILL of the master pod (redis and its Sentinel); the pod is started again once writes resumed."""
    old = _settle(h)
    with FaultRecorder(h, label) as rec:
        t0 = time.monotonic()
        h.kill_pod(old)
        killed = time.monotonic()  # both processes reaped: nothing sent from here on can reach them
        rec.wait_recovered(t0)
        h.start_pod(old)
        final = _settle(h)
        time.sleep(0.3)
    return rec.result(t0, old, final, fault_done=killed)


def fault_master_freeze(h: RedisHarness, label: str) -> dict[str, Any]:
    """SIGSTOP of the master's redis-server for 2 x down-after-milliseconds, then SIGCONT (its Sentinel runs)."""
    old = _settle(h)
    with FaultRecorder(h, label) as rec:
        t0 = time.monotonic()
        h.signal(f"redis-{old}", signal.SIGSTOP)
        try:
            time.sleep(2 * h.down_after_ms / 1000)
        finally:
            h.signal(f"redis-{old}", signal.SIGCONT)
        rec.wait_recovered(t0)
        final = _settle(h)
        time.sleep(0.3)
    return rec.result(t0, old, final)


def fault_master_partition(h: RedisHarness, label: str, hold_after_failover: float | None = None,
                           recover_within: float = 30.0) -> dict[str, Any]:
    """The master pod (its redis and Sentinel address) cut off from both other pods, in both directions, while
    clients and HAProxy still reach every node; healed ``hold_after_failover`` seconds (default down-after) after
    the majority's Sentinels named a new master, and not before writes went through -master again (at most
    ``recover_within`` seconds after the naming). Needs a harness started with ``pod_sources=True``."""
    if not h.pod_gids:
        raise HarnessError("the partition fault needs RedisHarness(pod_sources=True) (root)")
    old = _settle(h)
    others = [i for i in range(len(h.addresses)) if i != old]
    hold = h.down_after_ms / 1000 if hold_after_failover is None else hold_after_failover
    with FaultRecorder(h, label) as rec:
        t0 = time.monotonic()
        with partition.partition(drop=[(h.addresses[old], h.addresses[i]) for i in others], both_directions=True):
            wait_until(lambda: _new_master_named(h, old, others), 60, "the majority's Sentinels to name a new master")
            named = time.monotonic()
            # HAProxy switches through two chained checks after the naming (rise 2 each); on a loaded machine that
            # can take longer than the hold, so the partition lasts until it has, or recover_within runs out.
            rec.wait_recovered(named, timeout=recover_within)
            time.sleep(max(0.0, named + hold - time.monotonic()))
        t_heal = time.monotonic()
        rec.wait_recovered(t0)
        final = _settle(h)
        time.sleep(0.3)
    result = rec.result(t0, old, final)
    result["partition_s"] = round(t_heal - t0, 3)
    # Writes acknowledged through -master again while the old master was still cut off.
    result["recovered_during_partition"] = result["recovery_s"] < result["partition_s"]
    return result


def fault_sentinel_down_during_failover(h: RedisHarness, label: str, down_s: float = 1.0) -> dict[str, Any]:
    """SIGKILL of the master's redis-server (its Sentinel stays); the Sentinel that wins the failover election
    is SIGKILLed the moment it announces +elected-leader and started again ``down_s`` later (the kubelet restarts
    a crashed container at once the first time); the old master's redis is started again once writes resumed."""
    old = _settle(h)
    with FaultRecorder(h, label) as rec:
        t0 = time.monotonic()
        h.signal(f"redis-{old}", signal.SIGKILL)
        h.procs[f"redis-{old}"].popen.wait(timeout=10)
        _, leader, _, _ = rec.events.wait_for("+elected-leader", t0, 60)
        h.kill(f"sentinel-{leader}")
        t_killed = time.monotonic()
        time.sleep(down_s)
        h.start_sentinel(leader)
        # A restarted leader can leave the failover to Sentinel's retry after 2 x failover-timeout, with an
        # abort for "no good slave" on the way (replica INFO not refreshed yet): measured up to ~100 s.
        rec.wait_recovered(t0, timeout=180)
        h.start_redis(old)
        final = _settle(h)
        time.sleep(0.3)
    result = rec.result(t0, old, final)
    result.update({"killed_sentinel": leader, "sentinel_killed_at_s": round(t_killed - t0, 3),
                   "sentinel_down_s": down_s, "killed_sentinel_in_new_master_pod": leader == final})
    return result


def fault_replica_restart_during_failover(h: RedisHarness, label: str) -> dict[str, Any]:
    """SIGKILL of the master pod; the replica the failover selected is restarted (SIGKILL, started again at
    once, as a container restart) the moment the leader announces +selected-slave."""
    old = _settle(h)
    with FaultRecorder(h, label) as rec:
        t0 = time.monotonic()
        h.kill_pod(old)
        _, _, _, data = rec.events.wait_for("+selected-slave", t0, 60)
        selected = h.index_of(data.split()[2])  # "slave <ip>:<port> <ip> <port> @ <set> <master ip> <port>"
        h.kill(f"redis-{selected}")
        h.start_redis(selected)
        t_restarted = time.monotonic()
        rec.wait_recovered(t0)
        h.start_pod(old)
        final = _settle(h)
        time.sleep(0.3)
    result = rec.result(t0, old, final)
    result.update({"restarted_replica": selected, "replica_restarted_at_s": round(t_restarted - t0, 3)})
    return result


FAULTS: dict[str, Callable[[RedisHarness, str], dict[str, Any]]] = {
    "master-kill": fault_master_kill,
    "master-freeze": fault_master_freeze,
    "master-partition": fault_master_partition,
    "sentinel-down-during-failover": fault_sentinel_down_during_failover,
    "replica-restart-during-failover": fault_replica_restart_during_failover,
}
