"""TLS for the runtime harnesses: test certificates made with the ``openssl`` CLI, placed where the rendered Secret
volume of the chart is mounted, and TLS clients for the harnesses' checks.

What a cluster would do, done here: cert-manager issues the rendered ``Certificate`` (its dnsNames and ipAddresses)
from a CA; kubelet mounts the Secret (tls.crt, tls.key, ca.crt) at the volume's mountPath. The test CA signs one
server certificate per chart with the rendered Certificate's names, plus the loopback addresses the harness maps
those names to (the harnesses replace cluster DNS names with 127.A.B.x addresses, see postgres_harness.Translator
and redis_harness ``nodeAddresses``), so verify-full checks exactly what the chart's clients connect to.

Nothing in postgres_harness.py or redis_harness.py is edited: :class:`TLSCluster` and :class:`TLSRedisHarness`
subclass them (clients with TLS), :func:`install_postgres_certs` / :func:`install_redis_certs` write the files into
the pod directories before the daemons start.
"""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.runtime import postgres_harness as pgh
from tests.runtime import redis_harness as rh
from tools.manifest import KubeObject

BINARIES = ("openssl",)
# Patroni's etcd3 client over https (etcd.tls.enabled) needs idna in the system python (Debian python3-idna).
PATRONI_HTTPS = ("/usr/lib/python3/dist-packages/idna",)


@dataclass(frozen=True)
class CA:
    """A test CA: its certificate and key files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerCert:
    """The three keys of a kubernetes.io/tls Secret as cert-manager writes them, as files."""

    cert: Path
    key: Path
    ca: Path


def _openssl(*args: str | Path) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args[:2]))} failed: {proc.stderr.strip()}")


def make_ca(directory: Path, name: str = "nova-test-ca") -> CA:
    """A self-signed CA (EC P-256, 2 days), like a cert-manager CA issuer's root."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CA(directory / "ca.crt", directory / "ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", ca.key, "-out", ca.cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca


def issue(ca: CA, directory: Path, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> ServerCert:
    """A certificate signed by ``ca`` for the names and addresses (server and client auth, like the chart's
    Certificate's usages), written as tls.crt / tls.key / ca.crt in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key, csr, crt = directory / "tls.key", directory / "tls.csr", directory / "tls.crt"
    sans = [f"DNS:{n}" for n in dict.fromkeys(dns_names)] + [f"IP:{a}" for a in dict.fromkeys(ip_addresses)]
    ext = directory / "ext.cnf"
    ext.write_text(f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth,clientAuth\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", csr, "-subj", f"/CN={dns_names[0] if dns_names else ip_addresses[0]}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", crt,
             "-days", "2", "-extfile", ext)
    shutil.copyfile(ca.cert, directory / "ca.crt")
    csr.unlink()
    ext.unlink()
    return ServerCert(crt, key, directory / "ca.crt")


def certificate(objects: Sequence[KubeObject]) -> dict[str, Any]:
    """The one rendered cert-manager Certificate."""
    found = [o.obj for o in objects if o.kind == "Certificate"]
    if len(found) != 1:
        raise LookupError(f"expected one Certificate in the render, found {len(found)}")
    return found[0]


def place(cert: ServerCert, target: Path, owner: str | None = None, volume: dict[str, Any] | None = None) -> None:
    """Write the Secret's keys into a mounted volume directory, the key readable by ``owner`` only. ``volume``:
    the rendered Secret volume; its ``items`` (key -> path) are honoured like kubelet does."""
    target.mkdir(parents=True, exist_ok=True)
    items = {i["key"]: i["path"] for i in ((volume or {}).get("secret") or {}).get("items") or []}
    for src, key in ((cert.cert, "tls.crt"), (cert.key, "tls.key"), (cert.ca, "ca.crt")):
        name = items.get(key, key) if items else key
        if items and key not in items:
            continue
        shutil.copyfile(src, target / name)
        (target / name).chmod(0o600 if key == "tls.key" else 0o644)
        if owner and os.geteuid() == 0:
            pw = pwd.getpwnam(owner)
            os.chown(target / name, pw.pw_uid, pw.pw_gid)
    target.chmod(0o755)


def secret_mount(spec: dict[str, Any], container: str, secret: str) -> str:
    """mountPath of the volume of ``container`` that mounts Secret ``secret``."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for c in spec["containers"]:
        if c["name"] != container:
            continue
        for m in c.get("volumeMounts") or []:
            if (volumes.get(m["name"], {}).get("secret") or {}).get("secretName") == secret:
                return str(m["mountPath"])
    raise LookupError(f"container {container} mounts no Secret {secret}")


# ----------------------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------------------
class TLSCluster(pgh.Cluster):
    """postgres_harness.Cluster whose own SQL connections (checks, the writer of the failover) use
    sslmode=verify-full with the test CA, the way the umbrella configures the services."""

    ca_file: Path | None = None
    server: ServerCert | None = None

    def superuser_dsn(self, host: str, dbname: str = "postgres") -> str:
        dsn = super().superuser_dsn(host, dbname)
        if self.ca_file is None:
            return dsn
        return f"{dsn} sslmode=verify-full sslrootcert={self.ca_file}"

    @property
    def etcd_tls(self) -> bool:
        return any(a.startswith("--client-cert-auth=true") for a in self._etcd_container().get("args") or [])

    def _etcd_container(self) -> dict[str, Any]:
        return self.etcd_sts["spec"]["template"]["spec"]["containers"][0]

    def start_etcd(self) -> None:
        """postgres_harness.Cluster.start_etcd, except that health is read where the rendered readiness probe reads
        it: with etcd.tls.enabled that is the plain health listener, since the client port wants a certificate."""
        if not self.etcd_tls:
            return super().start_etcd()
        container = self._etcd_container()
        for pod in self.etcd_pods:
            env = pgh.container_env(container, pod, self.secrets)
            translate = pgh.Translator(pod.mounts, self.hosts, pod.ip)
            self._materialize(pod, self.etcd_sts, translate)  # the harness's own set-up step
            args = [translate(pgh.expand(a, env)) for a in container.get("args") or []]
            binary = shutil.which(Path(container["command"][0]).name) or container["command"][0]
            self._check_free(self.etcd_binds(pod))
            self._spawn(pod.name, [binary, *args], {**self.base_env(), **env}, pod.root)
        pgh.netutil.wait_listening({pod.name: self.etcd_binds(pod) for pod in self.etcd_pods}, self._exited_log,
                                   lambda name: self.procs[name].popen.pid)
        probe = container["readinessProbe"]["httpGet"]
        port = self.etcd_port(probe["port"]) if isinstance(probe["port"], str) else int(probe["port"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(pgh.http_status(f"http://{p.ip}:{port}{probe['path']}") == 200 for p in self.etcd_pods):
                return None
            time.sleep(0.2)
        raise RuntimeError(f"etcd did not become healthy: see {self.tmp}/*etcd*.log")

    def etcd_get(self, i: int, path: str, client_cert: bool = True, scheme: str = "https") -> int:
        """Status of a request to etcd member i's client port (0: the connection or handshake failed)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert and self.server is not None:
            context.load_cert_chain(str(self.server.cert), str(self.server.key))
        url = f"{scheme}://{self.etcd_pods[i].ip}:{self.etcd_port('client')}{path}"
        try:
            with urllib.request.urlopen(url, timeout=3, context=context if scheme == "https" else None) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except (OSError, ValueError):
            return 0


def install_postgres_certs(cluster: pgh.Cluster, ca: CA) -> ServerCert:
    """Issue the rendered Certificate's names (plus each pod's and localhost's loopback address: the harness's
    stand-ins for the pod DNS names) and write tls.crt / tls.key / ca.crt into every PostgreSQL pod's Secret volume
    (owned by the postgres user, key 0600). Materialises the pods first (ConfigMap volumes), so start_patroni
    finds them in place."""
    cert = certificate(cluster.chart.objects)["spec"]
    # The loopback stand-ins of the names: each pod, each etcd member, the -primary Service's ServiceIP and the
    # pooler pod (pooler_harness.POOLER_HOST; the certificate names -pooler-rw when the pooler is on).
    ips = [*cert.get("ipAddresses", []), *(p.ip for p in cluster.pg_pods), *(p.ip for p in cluster.etcd_pods),
           cluster.block.host(pgh.SERVICE_HOST), cluster.block.host(230)]
    server = issue(ca, cluster.tmp / "pki" / "postgres", cert["dnsNames"], ips)
    spec = cluster.pg_sts["spec"]["template"]["spec"]
    secret = next(v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v and v["name"] == "tls")
    mount = secret_mount(spec, "postgres", secret)
    for pod in cluster.pg_pods:
        translate = pgh.Translator(pod.mounts, cluster.hosts, pod.ip)
        cluster._materialize(pod, cluster.pg_sts, translate)  # the harness's own set-up step
        place(server, pod.mounts[mount], pgh.OS_USER)
    etcd_spec = cluster.etcd_sts["spec"]["template"]["spec"]
    if any((v.get("secret") or {}).get("secretName") == secret for v in etcd_spec.get("volumes") or []):
        etcd_mount = secret_mount(etcd_spec, "etcd", secret)
        for pod in cluster.etcd_pods:  # start_etcd materialises these pods; it keeps files already there
            place(server, pod.mounts[etcd_mount], pgh.OS_USER)
    if isinstance(cluster, TLSCluster):
        cluster.ca_file = ca.cert
        cluster.server = server
    return server


def postgres_cluster(objects: Sequence[KubeObject], timeout: float = 120) -> TLSCluster:
    """A started TLS cluster (etcd + Patroni nodes healthy); the caller exits it. A new CA per attempt."""
    def start(c: pgh.Cluster) -> None:
        install_postgres_certs(c, make_ca(c.tmp / "pki" / "ca"))
        pgh.start_all(c, timeout)
    cluster = pgh.started(lambda: TLSCluster(objects), start)
    assert isinstance(cluster, TLSCluster)
    return cluster


# ----------------------------------------------------------------------------------------------------------
# Redis
# ----------------------------------------------------------------------------------------------------------
class TLSRedisHarness(rh.RedisHarness):
    """redis_harness.RedisHarness with TLS clients (rediss, verified against the test CA). The certificates are
    placed by :func:`install_redis_certs` before :meth:`start_all`."""

    ca_file: str | None = None

    def _tls(self) -> dict[str, Any]:
        if self.ca_file is None:
            return {}
        return {"ssl": True, "ssl_ca_certs": self.ca_file, "ssl_cert_reqs": "required"}

    def client(self, i: int, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.addresses[i], port=self.redis_port, password=self.password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0), **self._tls())

    def sentinel_client(self, i: int, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.addresses[i], port=self.sentinel_port, password=self.sentinel_password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0), **self._tls())

    def proxy_client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host=self.proxy_address, port=self.redis_port, password=self.password,
                           socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                           retry=Retry(NoBackoff(), 0), **self._tls())

    def sentinel(self, timeout: float = 0.5) -> redis.sentinel.Sentinel:
        tls = self._tls()
        return redis.sentinel.Sentinel(
            [(a, self.sentinel_port) for a in self.addresses],
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": timeout,
                             "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0), **tls},
            password=self.password, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), **tls,
        )


def install_redis_certs(harness: rh.RedisHarness, ca: CA) -> ServerCert:
    """Issue the rendered Certificate's names plus the node and HAProxy loopback addresses (the render's
    ``nodeAddresses``: what every pod, Sentinel and HAProxy connects to) and place the files where the redis,
    sentinel and haproxy containers mount the Secret (the harness maps mount ``<m>`` of a pod to
    ``<workdir>/<pod>/<volume name>``)."""
    cert = certificate(harness.objects)["spec"]
    ips = [*cert.get("ipAddresses", []), *harness.addresses, harness.proxy_address]
    server = issue(ca, harness.workdir / "pki" / "redis", cert["dnsNames"], ips)
    spec = harness.pod_spec
    secret = next(v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v and v["name"] == "tls")
    for i in range(len(harness.addresses)):
        place(server, harness.workdir / harness.pod_name(i) / "tls")
    proxy = harness._proxy_spec()  # the harness's own rendered-object lookup
    for volume in proxy.get("volumes") or []:
        if (volume.get("secret") or {}).get("secretName") == secret:
            place(server, harness.workdir / "proxy" / volume["name"], volume=volume)
    if isinstance(harness, TLSRedisHarness):
        harness.ca_file = str(ca.cert)
    return server


def redis_cluster(set_values: Sequence[str] = ()) -> TLSRedisHarness:
    """A started, settled TLS Redis cluster (3 pods + HAProxy); the caller closes it."""
    def start(h: rh.RedisHarness) -> None:
        install_redis_certs(h, make_ca(h.workdir / "pki" / "ca"))
        h.start_all()
        h.wait_stable()
    harness = rh.started(lambda: TLSRedisHarness(set_values=set_values), start)
    assert isinstance(harness, TLSRedisHarness)
    return harness
