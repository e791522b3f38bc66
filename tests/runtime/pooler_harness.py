"""Run the nova-postgres chart's rendered PgBouncer pooler (Debian's pgbouncer) in front of a runtime cluster.

Everything comes from the render: the pooler Deployment's container (command, env, mounts), its ConfigMap
(pgbouncer.ini and pooler-start.sh) and the chart's Secret (the items the Deployment mounts). As for the other
pods (postgres_harness.py), mount paths become host directories and cluster DNS names become loopback addresses:
the -primary / -replicas Service names resolve to the cluster's ServiceIP, which routes each new connection to
the pod the Service selects at that moment. The start script runs as the ``postgres`` OS user (PgBouncer refuses
root) with /usr/sbin/pgbouncer; the pooler is stopped by PID on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

from tests.runtime import postgres_harness as h

POOLER_HOST = 230  # the pooler pod: <block>.230
PGBOUNCER = "/usr/sbin/pgbouncer"


class Pooler:
    """One pooler pod of ``role`` (rw or ro) of ``cluster``'s render."""

    def __init__(self, cluster: h.Cluster, role: str = "rw") -> None:
        self.cluster = cluster
        deployment = cluster.chart.component("Deployment", f"pooler-{role}")
        spec = deployment["spec"]["template"]["spec"]
        self.container = spec["containers"][0]
        self.port = next(p["containerPort"] for p in self.container["ports"] if p["name"] == "pgbouncer")
        self.ip = cluster.block.host(POOLER_HOST)
        self.root = cluster.tmp / f"pooler-{role}-{time.monotonic_ns()}"
        self.log = self.root / "pgbouncer.log"
        self.popen: subprocess.Popen[bytes] | None = None
        volumes = {v["name"]: v for v in spec["volumes"]}
        pod = h.Pod(f"pooler-{role}-0", self.ip, self.root, namespace=cluster.ns)
        for mount in self.container["volumeMounts"]:
            host = self.root / mount["name"]
            host.mkdir(parents=True)
            pod.mounts[mount["mountPath"]] = host
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                for name, content in cluster.chart.get("ConfigMap", volume["configMap"]["name"])["data"].items():
                    (host / name).write_text(content)
            elif "secret" in volume and volume["secret"]["secretName"] in cluster.secrets:
                data = cluster.secrets[volume["secret"]["secretName"]]
                for item in volume["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                    (host / item["path"]).write_text(data[item["key"]])
            # else a Secret the render does not hold (cert-manager's TLS Secret): the test places its files
        hosts = dict(cluster.hosts)
        service = cluster.primary_service_ip()
        primary = cluster.chart.service("-primary")["metadata"]["name"]
        hosts[f"{primary}.{cluster.ns}.svc.{cluster.domain}"] = service.ip
        translate = h.Translator(pod.mounts, hosts, self.ip)
        self.mounts = dict(pod.mounts)
        for mount in self.container["volumeMounts"]:
            if "configMap" not in volumes[mount["name"]]:
                continue
            host = pod.mounts[mount["mountPath"]]
            for file in host.iterdir():
                file.write_text(translate(file.read_text()))
        h._chown_tree(self.root)
        self.env = {**cluster.base_env(), **{k: translate(v) for k, v in h.container_env(self.container, pod,
                                                                                         cluster.secrets).items()},
                    "NOVA_PGBOUNCER": PGBOUNCER}
        self.command = [translate(a) for a in self.container["command"]]
        self.ini = Path(self.env["NOVA_POOLER_INI"])

    def __enter__(self) -> Self:
        self.log.touch()
        h._chown_tree(self.log)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(h._as_user(self.command), env=self.env, cwd=self.root, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"pgbouncer exited {self.popen.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.ip, self.port), timeout=0.5):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"pgbouncer did not listen on {self.ip}:{self.port}: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def dsn(self, login: str, dbname: str, **extra: Any) -> str:
        password = self.cluster.secrets_flat()[f"{login}-password"]
        options = " ".join(f"{k}={v}" for k, v in {"connect_timeout": 3, **extra}.items())
        return f"host={self.ip} port={self.port} dbname={dbname} user={login} password={password} {options}"
