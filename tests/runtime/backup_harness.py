"""Backups on real daemons: a TLS S3 server (SeaweedFS), the chart's pgBackRest files, the backup Job.

Builds on postgres_harness (etcd + Patroni/PostgreSQL from ``helm template`` output) and adds what the backup
values render, translated the same generic way (mount paths -> per-pod host directories, ``0.0.0.0`` -> the pod's
loopback address):

- :func:`s3_server`: the S3 repository, tests/runtime/s3_server.py's SeaweedFS (TLS, one access key pair, one
  bucket, free ports), on 127.0.0.1. pgBackRest 2.45 speaks S3 over TLS only and matches the endpoint against
  DNS names in the certificate (not IP addresses), so the certificate is for ``localhost`` too and the chart's
  ``backup.repository.s3.endpoint`` is ``localhost``. :func:`repository_values` and :func:`s3_secrets` are the
  values and Secrets a user would give the chart for it.
- :class:`BackupCluster`: a postgres_harness.Cluster whose pods also get the rendered pgBackRest ConfigMap
  (pgbackrest.conf translated), the rendered TLS Secret (the certificates the chart generated), the Secrets the
  values name (S3 keys, S3 CA), and the ``pgbackrest`` sidecar (``pgbackrest server``) started from the rendered
  container.
- :meth:`BackupCluster.run_backup_job`: the rendered CronJob's container (command, env, mounts) run once, like a
  Job the CronJob starts. It reaches the pods by their cluster DNS names, which the pods' server certificate
  holds: the process gets a private mount namespace whose /etc/hosts maps those names to the pods' addresses
  (``unshare -m`` + a bind mount; the host's /etc/hosts is untouched).

Everything is stopped by PID and removed on exit, also on failure (context managers).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.runtime import netutil
from tests.runtime import postgres_harness as ph
from tests.runtime import s3_server as s3
from tools.manifest import KubeObject

S3_HOST = "127.0.0.1"   # `localhost`: the only name that resolves to loopback on every host without /etc/hosts
S3_NAME = "localhost"
CREDENTIALS_SECRET = "nova-s3-credentials"
CA_SECRET = "nova-s3-ca"
BUCKET = s3.BUCKET
weed_binary = s3.weed_binary


def missing_binaries() -> list[str]:
    missing = ph.missing_binaries()
    missing += [b for b in ("pgbackrest", "unshare") if not shutil.which(b)]
    return missing + [b for b in s3.missing_binaries() if b not in missing]


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=True, **kw)


# ----------------------------------------------------------------------------------------------------------
# S3 repository (the server is tests/runtime/s3_server.py)
# ----------------------------------------------------------------------------------------------------------
def s3_server() -> s3.S3Server:
    """The S3 server these backups use (not started): 127.0.0.1 with a certificate for ``localhost``."""
    return s3.S3Server(S3_HOST, dns_name=S3_NAME)


def repository_values(server: s3.S3Server) -> dict[str, Any]:
    """The backup.repository values that point the chart at ``server``."""
    return {"type": "s3", "s3": {"endpoint": server.host, "port": server.port, "bucket": server.bucket,
                                 "uriStyle": "path", "credentialsSecret": CREDENTIALS_SECRET,
                                 "caSecret": CA_SECRET}}


def s3_secrets(server: s3.S3Server, *, wrong_key: bool = False) -> dict[str, dict[str, str]]:
    """The Secrets those values name (what a user creates before installing); ``wrong_key``: a secret key
    the server refuses."""
    secret = server.wrong_secret_key if wrong_key else server.secret_key
    return {CREDENTIALS_SECRET: {"access-key": server.access_key, "secret-key": secret},
            CA_SECRET: {"ca.crt": server.ca_pem}}


# ----------------------------------------------------------------------------------------------------------
# Cluster with the pgBackRest parts
# ----------------------------------------------------------------------------------------------------------
@dataclass
class JobResult:
    returncode: int
    output: str


def _rendered_secrets(chart: ph.Chart) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for o in chart.objects:
        if o.kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (o.obj.get("data") or {}).items()}
            data.update(o.obj.get("stringData") or {})
            out[o.name] = data
    return out


def _write_volume(host: Path, vol: dict[str, Any], chart: ph.Chart, secrets: dict[str, dict[str, str]],
                  translate: Callable[[str], str] | None = None) -> None:
    """Fill a ConfigMap or Secret volume's directory (``items`` honoured), as the kubelet does."""
    host.mkdir(parents=True, exist_ok=True)
    if "configMap" in vol:
        data = chart.get("ConfigMap", vol["configMap"]["name"])["data"]
        items = vol["configMap"].get("items")
    elif "secret" in vol:
        data = secrets[vol["secret"]["secretName"]]
        items = vol["secret"].get("items")
    else:
        return
    pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
    for key, path in pairs:
        content = data[key]
        if translate is not None and path.endswith(".conf"):
            content = "\n".join(_translate_conf_line(line, translate) for line in content.splitlines()) + "\n"
        (host / path).write_text(content)
        (host / path).chmod(0o644)


def _secret_perms(host: Path, vol: dict[str, Any]) -> None:
    """What the kubelet gives a Secret volume with an fsGroup: root-owned files, group fsGroup, defaultMode plus
    group read (pgBackRest accepts a root-owned key with at most u=rw,g=r)."""
    if "secret" not in vol or os.geteuid() != 0:
        return
    import grp

    gid = grp.getgrnam(ph.OS_USER).gr_gid
    mode = int(vol["secret"].get("defaultMode", 0o644)) | 0o040
    for f in host.iterdir():
        os.chown(f, 0, gid)
        f.chmod(mode)


def _translate_conf_line(line: str, translate: Callable[[str], str]) -> str:
    """An ini line ``key=value``: the value gets the container -> host translation."""
    if "=" not in line or line.lstrip().startswith(("#", "[")):
        return line
    key, value = line.split("=", 1)
    return f"{key}={translate(value)}"


class BackupCluster(ph.Cluster):
    """A postgres_harness.Cluster plus the pgBackRest volumes, the ``pgbackrest`` sidecar and the backup Job."""

    def __init__(self, objects: Sequence[KubeObject], extra_secrets: dict[str, dict[str, str]], *,
                 claims: dict[str, Path] | None = None, workdir: Path | None = None) -> None:
        """``claims``: PersistentVolumeClaim name -> host directory, shared by every pod and Job that mounts the
        claim (a ReadWriteMany volume; it outlives the cluster, like the claim the chart keeps)."""
        self.extra_secrets = extra_secrets
        self.claims = claims or {}
        super().__init__(objects, workdir=workdir)

    def _setup(self) -> None:
        super()._setup()
        # Secrets the values name (created by the user) and the chart's own (TLS), for env and volumes.
        self.secrets.update(self.extra_secrets)
        self.all_secrets = {**_rendered_secrets(self.chart), **self.secrets}
        spec = self.pg_sts["spec"]["template"]["spec"]
        self.sidecar = next((c for c in spec["containers"] if c["name"] == "pgbackrest"), None)
        if self.sidecar is not None:
            for pod in self.pg_pods:
                for m in self.sidecar.get("volumeMounts") or []:
                    pod.mounts.setdefault(m["mountPath"], pod.root / m["name"])
        for pod in self.pg_pods:
            for m in self.pg_container().get("volumeMounts") or []:
                claim = self._claim_dir(spec, m["name"])
                if claim is not None:
                    pod.mounts[m["mountPath"]] = claim

    def _claim_dir(self, spec: dict[str, Any], volume: str) -> Path | None:
        vol = next((v for v in spec.get("volumes") or [] if v["name"] == volume), {})
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim is None:
            return None
        if claim not in self.claims:
            raise LookupError(f"volume {volume} mounts claim {claim}: pass its host directory in claims=")
        return self.claims[claim]

    def pg_container_env(self, pod: ph.Pod) -> dict[str, str]:
        return ph.container_env(self.pg_container(), pod, {**self.secrets, **self.extra_secrets})

    def start_patroni(self, i: int) -> ph.Proc:
        pod = self.pg_pods[i]
        if not pod.root.exists():
            translate = ph.Translator(pod.mounts, self.hosts, pod.ip)
            self._materialize(pod, self.pg_sts, translate)
            volumes = {v["name"]: v for v in self.pg_sts["spec"]["template"]["spec"]["volumes"]}
            for host in {p for p in pod.mounts.values()}:
                vol = volumes.get(host.name)
                if vol and ("secret" in vol or host.name == "pgbackrest-config"):
                    _write_volume(host, vol, self.chart, self.all_secrets, translate)
            ph._chown_tree(pod.root)
            for host in {p for p in pod.mounts.values()}:
                if host.name in volumes:
                    _secret_perms(host, volumes[host.name])
            (pod.root / "data").chmod(0o700)
            if self.sidecar is not None:
                self.start_sidecar(i)
        return super().start_patroni(i)

    def start_sidecar(self, i: int) -> ph.Proc:
        """The rendered ``pgbackrest`` container (``pgbackrest server``) of pod ``i``."""
        assert self.sidecar is not None
        pod = self.pg_pods[i]
        translate = ph.Translator(pod.mounts, self.hosts, pod.ip)
        env = {**self.base_env(), **{k: translate(v) for k, v in
                                     ph.container_env(self.sidecar, pod, self.secrets).items()}}
        cmd = [translate(a) for a in self.sidecar["command"] + (self.sidecar.get("args") or [])]
        cmd[0] = shutil.which(cmd[0]) or cmd[0]
        port = next(p["containerPort"] for p in self.sidecar["ports"] if p["name"] == "pgbackrest")
        proc = self._spawn(f"{pod.name}-pgbackrest", cmd, env, pod.root)
        netutil.wait_listening({proc.name: [(pod.ip, port)]}, self._exited_log, lambda n: self.procs[n].popen.pid)
        return proc

    # -- backup Job ------------------------------------------------------------------------------------------
    def run_backup_job(self, backup_type: str = "full", *, secrets: dict[str, dict[str, str]] | None = None,
                       objects: Sequence[KubeObject] | None = None, timeout: float = 600) -> JobResult:
        """Run the rendered CronJob ``<fullname>-backup-<type>``'s container once, to completion."""
        chart = ph.Chart(objects) if objects is not None else self.chart
        cron = chart.get("CronJob", f"-backup-{backup_type}")
        spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        container = spec["containers"][0]
        root = self.tmp / f"backup-{backup_type}-{time.monotonic_ns()}"
        pod = ph.Pod(root.name, "127.0.0.1", root, namespace=self.ns)
        for m in container["volumeMounts"]:
            pod.mounts[m["mountPath"]] = self._claim_dir(spec, m["name"]) or root / m["name"]
        # A later render's generated Secrets keep this cluster's existing ones, as `lookup` does on upgrade.
        all_secrets = {**_rendered_secrets(chart), **self.all_secrets, **(secrets or {})}
        translate = ph.Translator(pod.mounts, {}, "127.0.0.1")
        # pgN-path / pgN-socket-path are sent to pod N's TLS server: they are pod N's paths (the same in every
        # container in a cluster; here each pod has its own host directories).
        pod_translate = {n + 1: ph.Translator(p.mounts, {}, p.ip) for n, p in enumerate(self.pg_pods)}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for m in container["volumeMounts"]:
            if "persistentVolumeClaim" in volumes[m["name"]]:
                continue
            _write_volume(root / m["name"], volumes[m["name"]], chart, all_secrets,
                          lambda value: translate(value))
        conf = root / "config" / "pgbackrest.conf"
        lines = []
        for line in conf.read_text().splitlines():
            m = re.match(r"^pg(\d+)-(path|socket-path)=(.*)$", line)
            if m and int(m.group(1)) in pod_translate:
                line = f"pg{m.group(1)}-{m.group(2)}={pod_translate[int(m.group(1))](m.group(3))}"
            lines.append(line)
        conf.write_text("\n".join(lines) + "\n")
        hosts_file = root / "hosts"
        hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
        ph._chown_tree(root)
        for m in container["volumeMounts"]:
            _secret_perms(root / m["name"], volumes[m["name"]])
        env = {**self.base_env(), **{k: translate(v) for k, v in ph.container_env(container, pod,
                                                                                 all_secrets).items()}}
        cmd = [translate(a) for a in container["command"] + (container.get("args") or [])]
        inner = " ".join(_quote(a) for a in ph._as_user(cmd))
        wrapper = ["unshare", "-m", "sh", "-c", f"mount --bind {_quote(str(hosts_file))} /etc/hosts && exec {inner}"]
        out = subprocess.run(wrapper, env=env, cwd=root, capture_output=True, text=True, timeout=timeout,
                             check=False)
        return JobResult(out.returncode, out.stdout + out.stderr)

    def pgbackrest(self, i: int, *args: str) -> subprocess.CompletedProcess[str]:
        """pgbackrest in pod ``i``'s postgres container (its env and translated config), e.g. ``info``."""
        env = self.pod_env(self.pg_pods[i])
        return subprocess.run(ph._as_user(["pgbackrest", *args]), env=env, capture_output=True, text=True,
                              check=False, timeout=300)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@contextlib.contextmanager
def backup_cluster(objects: Sequence[KubeObject], extra_secrets: dict[str, dict[str, str]],
                   timeout: float = 120, wait: bool = True, claims: dict[str, Path] | None = None) -> Any:
    """etcd + Patroni (+ pgbackrest sidecars) started; with ``wait`` until a leader and streaming replicas."""
    def start(c: ph.Cluster) -> None:
        c.start_etcd()
        for i in range(len(c.pg_pods)):
            c.start_patroni(i)
        if wait:
            c.wait_healthy(timeout)

    cluster = ph.started(lambda: BackupCluster(objects, extra_secrets, claims=claims), start)
    with cluster:
        yield cluster
