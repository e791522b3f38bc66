"""charts/nova-redis backups and restore on real daemons, from the rendered chart (docs/redis.md "Backups and restore").

The chart's Redis pods (redis + sentinel, tests/runtime/redis_harness.py) run with backups to a PV repository;
a directory under tmp_path stands in for the PersistentVolumeClaim. The rendered CronJob's pod runs as the
kubelet would (tests/runtime/redis_backup_harness.py): the `snapshot` init container, then `store`. A NEW
release, rendered with `restore.fromSnapshot`, runs the StatefulSet's `restore` init container in each pod's
empty data directory and then starts its Redis pods on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binaries
from tests.runtime import redis_backup_harness as rb
from tests.runtime.redis_harness import RedisHarness, started

pytestmark = pytest.mark.runtime
KEYS = 3000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisHarness]:
    require_binaries(*rb.BINARIES)
    h = started(lambda: RedisHarness(workdir=tmp_path, set_values=rb.backup_values(keep=2)))
    try:
        yield h
    finally:
        h.close()


def _fake_snapshot(repo: Path, name: str) -> None:
    (repo / name).write_bytes(b"not a real snapshot")
    (repo / f"{name}.sha256").write_text(hashlib.sha256(b"not a real snapshot").hexdigest() + "\n")


def test_restored_release_holds_exactly_the_snapshot_keys_taken_from_a_replica(cluster: RedisHarness, tmp_path: Path) -> None:
    repo = tmp_path / "repository"
    repo.mkdir()
    # Older snapshots of this release (retention keeps 2: the newest old one and the new one) and files that
    # are not this release's snapshots (never touched).
    _fake_snapshot(repo, "nova-redis-20200101T000000Z.rdb")
    _fake_snapshot(repo, "nova-redis-20210101T000000Z.rdb")
    (repo / "other-redis-20190101T000000Z.rdb").write_text("another release's")
    (repo / "README").write_text("operator notes")

    master = cluster.wait_stable()
    m = cluster.client(master, timeout=10)
    rb.write_dataset(m, "before", KEYS)
    m.set("changed-after", "old")
    m.set("deleted-after", "still here in the snapshot")
    rb.settle_replicas(m, 2)
    expected = rb.read_dataset(m)
    master_syncs = int(m.info("stats")["sync_full"])

    job = rb.run_backup_job(cluster, tmp_path / "job-1", {rb.CLAIM: repo})
    assert job.ok, job.log
    name = job.snapshot_name()
    assert name.startswith("nova-redis-") and name.endswith("Z.rdb"), name
    host, _ = job.source()
    assert host != cluster.addresses[master], f"the snapshot came from the master {host}"
    assert cluster.role(cluster.index_of(host))["role"] == "slave"
    # The master served no full sync: the replica produced the RDB.
    assert int(m.info("stats")["sync_full"]) == master_syncs
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

    # A new release (own addresses, own data dirs) starts from the named snapshot.
    restored = started(lambda: RedisHarness(workdir=tmp_path, set_values=rb.restore_values(name)),
                       lambda h: _restore_and_start(h, repo))
    try:
        new_master = restored.wait_stable()
        assert new_master == 0
        for i in range(3):
            got = rb.read_dataset(restored.client(i, timeout=10))
            assert sorted(got) == sorted(expected), f"pod {i}: keys differ from the snapshot's"
            assert got == expected, f"pod {i}: values differ from the snapshot's"
        assert restored.client(0).get("changed-after") == "old"
        # The restore never overwrites data: run the step again on pod 0, which now has data.
        pod0 = restored.workdir / restored.pod_name(0) / "data"
        manifest = (pod0 / "appendonlydir" / "appendonly.aof.manifest").read_text()
        again = rb.run_restore_init(restored, 0, {rb.CLAIM: repo})
        assert [s.returncode for s in again] == [0], again
        assert "existing data is never overwritten" in again[0].log
        assert (pod0 / "appendonlydir" / "appendonly.aof.manifest").read_text() == manifest
        assert (pod0 / ".nova-redis-restored").read_text().split()[0] == name
        # `latest` picks the newest of this release's snapshots (not the older one, not another release's).
        fresh = tmp_path / "latest-data"
        steps = rb.run_restore_init(restored, 0, {rb.CLAIM: repo}, data_dir=fresh,
                                    env_override={"RESTORE_SNAPSHOT": "latest"})
        assert [s.returncode for s in steps] == [0], steps
        assert (fresh / ".nova-redis-restored").read_text().split()[0] == name
    finally:
        restored.close()


def _restore_and_start(h: RedisHarness, repo: Path) -> None:
    for i in range(3):
        steps = rb.run_restore_init(h, i, {rb.CLAIM: repo})
        assert [s.name for s in steps] == ["restore"]
        assert steps[0].returncode == 0, steps[0].log
        assert "restored " in steps[0].log
    h.start_all(proxy=False)
