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

An S3 server for these tests (SeaweedFS, as the PostgreSQL backups use) is not started here yet: see
docs/redis.md "Backups and restore" for what is proven on which repository.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.runtime.redis_harness import Container, HarnessError, RedisHarness

CLAIM = "redis-backups"  # backup.repository.pv.existingClaim in the renders of these tests
SCRIPTS = ("snapshot.sh", "store.sh", "restore.sh", "lib.sh")
BINARIES = ("redis-server", "redis-cli", "redis-check-rdb", "timeout")


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
    """One container of a backup/restore pod: its name, exit code and combined log."""

    name: str
    returncode: int
    log: str


@dataclass
class JobResult:
    """A backup Job's pod: the steps that ran (the container does not run when the init container fails)."""

    steps: list[StepResult]
    scratch: Path

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.returncode == 0 for s in self.steps) and len(self.steps) == 2

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


def _materialise(h: RedisHarness, pod_dir: Path, pod_spec: Mapping[str, Any], spec: dict[str, Any],
                 claims: Mapping[str, Path], fixed: Mapping[str, Path] | None = None) -> Container:
    """Map each volume mount of ``spec`` to a local directory: ConfigMaps written out under ``pod_dir``,
    PersistentVolumeClaims to ``claims[claimName]`` (a claim with no directory given raises), ``fixed`` volume
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
    env = h._env(c, pod_name)  # noqa: SLF001 - reused as is, the harness module is not ours to change
    for k, v in env_override.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    argv = c.argv(c.spec["command"] + c.spec.get("args", []))
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=h.workdir)
    except subprocess.TimeoutExpired as exc:
        return StepResult(c.name, -1, f"timed out after {timeout:.0f}s\n{exc.stdout or ''}{exc.stderr or ''}")
    return StepResult(c.name, done.returncode, done.stdout + done.stderr)


def cronjob_pod_spec(h: RedisHarness) -> dict[str, Any]:
    cj = _one(h, "CronJob")
    return dict(cj["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def run_backup_job(h: RedisHarness, pod_dir: Path, claims: Mapping[str, Path],
                   env_override: Mapping[str, str | None] | None = None,
                   step_env: Mapping[str, Mapping[str, str | None]] | None = None,
                   timeout: float = 120) -> JobResult:
    """Run one backup Job pod of the rendered CronJob in ``pod_dir``: init containers in order, then the
    containers, stopping at the first failure (as the kubelet does; restartPolicy Never). ``env_override``
    changes (None: removes) variables of every step, ``step_env`` of one step by container name."""
    spec = cronjob_pod_spec(h)
    pod_dir.mkdir(parents=True, exist_ok=True)
    steps: list[StepResult] = []
    for c_spec in [*spec.get("initContainers", []), *spec["containers"]]:
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
            {"string": lambda k: pipe.get(k), "hash": lambda k: pipe.hgetall(k), "list": lambda k: pipe.lrange(k, 0, -1),
             "set": lambda k: pipe.smembers(k), "zset": lambda k: pipe.zrange(k, 0, -1, withscores=True)}[t](k)
        for k, t, v in zip(chunk, types, pipe.execute()):
            out[k] = (t, sorted(v) if t == "set" else v)
    return out


def settle_replicas(client: redis.Redis, replicas: int, timeout_ms: int = 10000) -> None:
    """WAIT until ``replicas`` replicas acknowledged everything written so far on the master ``client``."""
    acked = int(client.execute_command("WAIT", replicas, timeout_ms))
    if acked < replicas:
        raise HarnessError(f"only {acked} of {replicas} replicas acknowledged the dataset within {timeout_ms} ms")


def missing(expected: Sequence[str], present: Sequence[str]) -> list[str]:
    return sorted(set(expected) - set(present))
