"""Run the nova-redis backup CronJob and the restore init containers from the rendered chart, on real daemons.

tests/runtime/redis_harness.py starts the Redis pods (redis + sentinel) of a render; this module adds what a
backup and a restore need, without changing that harness:

- :func:`run_backup_job` runs the rendered CronJob's pod as the kubelet would: its init container
  (``snapshot``: redis-cli --rdb from a replica chosen through Sentinel) and, if it succeeded, its container
  (``store``: repository, check, retention), each with the rendered command and environment, every volume
  mount mapped to a local directory (the ConfigMap's files written out, the repository claim a directory the
  test gives, standing in for the PersistentVolume);
- :func:`run_restore_init` runs the rendered StatefulSet's restore init containers of one pod with that pod's
  data directory (the same one RedisHarness then starts redis-server on).

Paths are translated like the harness does it (``Container.map_path``). Used by tests/runtime/test_redis_backup.py
and bench/restore_redis.py.

- :func:`s3_server`: the S3 repository, tests/runtime/s3_server.py's SeaweedFS (the one the PostgreSQL backup
  harness uses too) on a loopback address of the run's block, over TLS with one access key;
  :func:`s3_values` and :func:`s3_secrets` are the chart values and Secrets that point a release at it.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.runtime import netutil
from tests.runtime import s3_server as s3
from tests.runtime.redis_harness import Container, HarnessError, RedisHarness

CLAIM = "redis-backups"  # backup.repository.pv.existingClaim in the renders of these tests
SCRIPTS = ("snapshot.sh", "store.sh", "restore.sh", "lib.sh")
BINARIES = ("redis-server", "redis-cli", "redis-check-rdb", "timeout")
S3_BINARIES = ("rclone", "openssl", "busybox", "unshare")
S3_HOST = 20  # the S3 server -> <block>.20
BUCKET = s3.BUCKET
weed_binary = s3.weed_binary


def backup_values(keep: int = 7, claim: str = CLAIM) -> list[str]:
    """--set values for backups to a PV repository (the claim the tests stand in for with a directory)."""
    return ["backup.enabled=true", "backup.repository.type=pv", f"backup.repository.pv.existingClaim={claim}",
            f"backup.retention.keep={keep}"]


def restore_values(snapshot: str, claim: str = CLAIM, source_prefix: str = "") -> list[str]:
    """--set values for a release that starts from ``snapshot`` of the PV repository."""
    values = ["backup.repository.type=pv", f"backup.repository.pv.existingClaim={claim}",
              f"restore.fromSnapshot={snapshot}"]
    if source_prefix:
        values.append(f"restore.sourcePrefix={source_prefix}")
    return values


@dataclass
class StepResult:
    """One container of a backup/restore pod: its name, exit code, combined log and wall time (seconds)."""

    name: str
    returncode: int
    log: str
    seconds: float = 0.0


@dataclass
class JobResult:
    """A backup Job's pod: the steps that ran (the container does not run when the init container fails)."""

    steps: list[StepResult]
    scratch: Path

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.returncode == 0 for s in self.steps) and self.steps[-1].name == "store"

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.returncode})\n{s.log}" for s in self.steps)

    def snapshot_name(self) -> str:
        return (self.scratch / "current").read_text().strip()

    def source(self) -> tuple[str, int]:
        """The replica the snapshot came from (written by snapshot.sh)."""
        host, port = (self.scratch / "source").read_text().split()
        return host, int(port)


def _one(h: RedisHarness, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o.obj for o in h.objects if o.kind == kind and (name is None or o.name == name)]
    if len(found) != 1:
        raise HarnessError(f"expected one {kind}{' ' + name if name else ''} in the render, found {len(found)}")
    return found[0]


def _secret_data(h: RedisHarness, name: str) -> dict[str, str]:
    """A Secret's keys: given to the harness (``secrets``, an existing Secret) or rendered."""
    if name in h.secrets:
        return dict(h.secrets[name])
    data = _one(h, "Secret", name).get("data", {})
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _materialise(h: RedisHarness, pod_dir: Path, pod_spec: Mapping[str, Any], spec: dict[str, Any],
                 claims: Mapping[str, Path], fixed: Mapping[str, Path] | None = None) -> Container:
    """Map each volume mount of ``spec`` to a local directory: ConfigMaps written out under ``pod_dir``,
    Secrets written out likewise, PersistentVolumeClaims to ``claims[claimName]`` (a claim with no directory given raises), ``fixed`` volume
    names to the given directories, anything else (emptyDir) to ``pod_dir/<volume>``."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for m in spec.get("volumeMounts", []):
        vol = volumes.get(m["name"], {})
        if fixed and m["name"] in fixed:
            local = fixed[m["name"]]
        elif "configMap" in vol:
            local = pod_dir / m["name"]
            local.mkdir(parents=True, exist_ok=True)
            for fname, content in _one(h, "ConfigMap", vol["configMap"]["name"]).get("data", {}).items():
                (local / fname).write_text(content)
        elif "secret" in vol:
            local = pod_dir / m["name"]
            local.mkdir(parents=True, exist_ok=True)
            for fname, content in _secret_data(h, vol["secret"]["secretName"]).items():
                (local / fname).write_text(content)
        elif "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            if claim not in claims:
                raise HarnessError(f"volume {m['name']} mounts claim {claim}: give the test a directory for it")
            local = claims[claim]
        else:
            local = pod_dir / m["name"]
            local.mkdir(parents=True, exist_ok=True)
        mounts[m["mountPath"]] = local
    return Container(spec["name"], spec, mounts)


def _run(h: RedisHarness, c: Container, pod_name: str, env_override: Mapping[str, str | None],
         timeout: float) -> StepResult:
    # The harness's own env mapping (plain values path-mapped, fieldRef, secretKeyRef against the render).
    env = h._env(c, pod_name)  # reused as is: the harness module is not ours to change
    env.setdefault("TMPDIR", c.map_path("/tmp"))  # the pod's /tmp emptyDir, never the host's /tmp
    for k, v in env_override.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    argv = c.argv(c.spec["command"] + c.spec.get("args", []))
    if "rclone/rclone" in c.spec.get("image", ""):
        argv, env["PATH"] = _as_in_the_rclone_image(argv, h.workdir / "busybox-bin")
    t0 = time.monotonic()
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=h.workdir)
    except subprocess.TimeoutExpired as exc:
        return StepResult(c.name, -1, f"timed out after {timeout:.0f}s\n{exc.stdout or ''}{exc.stderr or ''}",
                          time.monotonic() - t0)
    return StepResult(c.name, done.returncode, done.stdout + done.stderr, time.monotonic() - t0)


def _as_in_the_rclone_image(argv: list[str], bindir: Path) -> tuple[list[str], str]:
    """The rclone image is Alpine: /bin/sh and every tool a script calls are BusyBox, plus rclone. Run the step
    the same way: BusyBox's sh, and a PATH of BusyBox applets and rclone only (Debian's busybox package)."""
    busybox, rclone = shutil.which("busybox"), shutil.which("rclone")
    if busybox is None or rclone is None:
        raise HarnessError("the rclone image's steps need `busybox` and `rclone` (make setup installs both)")
    if not bindir.is_dir():
        bindir.mkdir(parents=True)
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            (bindir / applet).symlink_to(busybox)
        (bindir / "rclone").symlink_to(rclone)
    if argv[:1] != ["/bin/sh"]:
        raise HarnessError(f"expected the step to run /bin/sh, got {argv[:1]}")
    return [busybox, "sh", *argv[1:]], str(bindir)


def cronjob_pod_spec(h: RedisHarness) -> dict[str, Any]:
    cj = _one(h, "CronJob")
    return dict(cj["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def step_env(h: RedisHarness, pod_dir: Path, container: str, claims: Mapping[str, Path]) -> dict[str, str]:
    """The environment of one container of the backup Job's pod, paths mapped (e.g. to run rclone against the
    repository exactly as the store step does)."""
    spec = cronjob_pod_spec(h)
    c_spec = next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == container)
    c = _materialise(h, pod_dir, spec, c_spec, claims)
    return h._env(c, f"{h.fullname}-backup-manual")


def run_backup_job(h: RedisHarness, pod_dir: Path, claims: Mapping[str, Path],
                   env_override: Mapping[str, str | None] | None = None,
                   step_env: Mapping[str, Mapping[str, str | None]] | None = None,
                   timeout: float = 120, skip: tuple[str, ...] = ()) -> JobResult:
    """Run one backup Job pod of the rendered CronJob in ``pod_dir``: init containers in order, then the
    containers, stopping at the first failure (as the kubelet does; restartPolicy Never). ``env_override``
    changes (None: removes) variables of every step, ``step_env`` of one step by container name. ``skip``:
    steps not to run (e.g. ``snapshot``, with ``pod_dir/scratch`` holding an earlier Job's snapshot)."""
    spec = cronjob_pod_spec(h)
    pod_dir.mkdir(parents=True, exist_ok=True)
    steps: list[StepResult] = []
    for c_spec in [*spec.get("initContainers", []), *spec["containers"]]:
        if c_spec["name"] in skip:
            continue
        c = _materialise(h, pod_dir, spec, c_spec, claims)
        env = {**(env_override or {}), **((step_env or {}).get(c.name, {}))}
        result = _run(h, c, f"{h.fullname}-backup-manual", env, timeout)
        steps.append(result)
        if result.returncode != 0:
            break
    return JobResult(steps, pod_dir / "scratch")


def run_restore_init(h: RedisHarness, i: int, claims: Mapping[str, Path],
                     env_override: Mapping[str, str | None] | None = None,
                     data_dir: Path | None = None, timeout: float = 300) -> list[StepResult]:
    """Run the rendered StatefulSet's init containers of pod ``i`` (restore-fetch, restore) on the pod's data
    directory (where RedisHarness keeps it: ``<workdir>/<pod>/data``, or ``data_dir``). Stops at a failure."""
    pod_dir = h.workdir / h.pod_name(i)
    fixed = {"data": data_dir or pod_dir / "data"}
    fixed["data"].mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []
    for c_spec in h.pod_spec.get("initContainers", []):
        c = _materialise(h, pod_dir / "init", h.pod_spec, c_spec, claims, fixed)
        result = _run(h, c, h.pod_name(i), env_override or {}, timeout)
        results.append(result)
        if result.returncode != 0:
            break
    if not results:
        raise HarnessError("the rendered StatefulSet has no init containers: render with restore.fromSnapshot")
    return results


# ---- datasets ------------------------------------------------------------------------------------------------


def write_dataset(client: redis.Redis, prefix: str, n: int, batch: int = 1000) -> None:
    """``n`` keys under ``prefix``: mostly strings, every 10th a hash, list, set or sorted set (the types a
    restore must carry), written with pipelines."""
    pipe = client.pipeline(transaction=False)
    for k in range(n):
        key = f"{prefix}:{k}"
        kind = k % 10
        if kind == 1:
            pipe.hset(key, mapping={"a": str(k), "b": f"x{k}"})
        elif kind == 2:
            pipe.rpush(key, str(k), str(k + 1), str(k + 2))
        elif kind == 3:
            pipe.sadd(key, f"m{k}", f"n{k}")
        elif kind == 4:
            pipe.zadd(key, {f"z{k}": float(k), f"y{k}": 0.5})
        else:
            pipe.set(key, f"value-{k}")
        if (k + 1) % batch == 0:
            pipe.execute()
    pipe.execute()


def read_dataset(client: redis.Redis, match: str = "*") -> dict[str, Any]:
    """Every key matching ``match`` with its value, read by type (string, hash, list, set, zset)."""
    keys = sorted(client.scan_iter(match=match, count=1000))
    out: dict[str, Any] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        pipe = client.pipeline(transaction=False)
        for k in chunk:
            pipe.type(k)
        types = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for k, t in zip(chunk, types):
            _read(pipe, k, t)
        for k, t, v in zip(chunk, types, pipe.execute()):
            out[k] = (t, sorted(v) if t == "set" else v)
    return out


def _read(pipe: Any, key: str, kind: str) -> None:
    if kind == "string":
        pipe.get(key)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    else:
        raise HarnessError(f"key {key} has type {kind}, which read_dataset does not read")


def settle_replicas(client: redis.Redis, replicas: int, timeout_ms: int = 10000) -> None:
    """WAIT until ``replicas`` replicas acknowledged everything written so far on the master ``client``."""
    acked = int(client.execute_command("WAIT", replicas, timeout_ms))
    if acked < replicas:
        raise HarnessError(f"only {acked} of {replicas} replicas acknowledged the dataset within {timeout_ms} ms")


def s3_server(block: netutil.AddressBlock, workdir: Path) -> s3.S3Server:
    """The S3 repository of a run on ``block`` (not started): tests/runtime/s3_server.py's SeaweedFS on
    ``<block>.20``, its certificate for that address (rclone checks IP SANs), its files under ``workdir``."""
    return s3.S3Server(block.host(S3_HOST), workdir=workdir)


def s3_values(endpoint: str, secret: str = "s3-credentials", ca_secret: str = "s3-ca", keep: int = 7) -> list[str]:
    """--set values for backups to the S3 repository at ``endpoint`` (keys and CA from the given Secrets)."""
    return ["backup.enabled=true", "backup.repository.type=s3", f"backup.repository.s3.endpoint={endpoint}",
            f"backup.repository.s3.bucket={BUCKET}", "backup.repository.s3.path=redis/nova",
            f"backup.repository.s3.existingSecret={secret}", f"backup.repository.s3.caSecret.name={ca_secret}",
            f"backup.retention.keep={keep}"]


def s3_secrets(server: s3.S3Server, *, wrong_key: bool = False) -> dict[str, dict[str, str]]:
    """The Secrets :func:`s3_values` names: the access keys (``wrong_key``: a secret key the server refuses)
    and the CA bundle."""
    secret = server.wrong_secret_key if wrong_key else server.secret_key
    return {"s3-credentials": {"access-key-id": server.access_key, "secret-access-key": secret},
            "s3-ca": {"ca.crt": server.ca_pem}}
