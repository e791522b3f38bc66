"""charts/nova-redis on real daemons: redis-server, Sentinel and HAProxy started from the rendered chart.

Each test gets its own three pods and HAProxy on an address block claimed for it (127.A.B.1-3 and .10, see
netutil.py), all started at once from the rendered ConfigMaps and container specs (see redis_harness.py), and
stopped by PID afterwards, with the temp dir removed and the block released, also when the test fails.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import require_binaries
from tests.runtime import netutil
from tests.runtime.redis_harness import (
    BINARIES,
    RedisHarness,
    Writer,
    kill_master_and_measure,
    missing_writes,
    started,
    wait_until,
)

pytestmark = pytest.mark.runtime
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py retries (with a backoff) by default; these checks want one answer


def agreed_master(cluster: RedisHarness, timeout: float = 20) -> int:
    """The pod every Sentinel names as the master, once they all answer and agree (the preStop hook gives up
    waiting for that at its deadline, and a Sentinel on a busy machine can miss one 2 s answer)."""
    def agreed() -> str | None:
        views = cluster.sentinel_views()
        return views[0] if None not in views and len(set(views)) == 1 else None
    return cluster.index_of(str(wait_until(agreed, timeout, "every Sentinel to name the same master")))


@pytest.fixture
def cluster(tmp_path) -> Iterator[RedisHarness]:
    require_binaries(*BINARIES)
    h = started(lambda: RedisHarness(workdir=tmp_path))
    try:
        yield h
    finally:
        h.close()


def test_parallel_start_gives_one_master_two_synced_replicas_and_agreeing_sentinels(tmp_path) -> None:
    require_binaries(*BINARIES)
    acl = ("aclUsers.user-service.keyPrefix=user:",)
    # All six processes at once, in shuffled order, with no Sentinel state anywhere.
    order = list(range(3))
    random.Random(7).shuffle(order)
    with started(lambda: RedisHarness(workdir=tmp_path, set_values=acl),
                 lambda h: h.start_all(proxy=False, order=order)) as cluster:
        master = cluster.wait_stable()
        roles = [cluster.role(i)["role"] for i in range(3)]
        assert roles.count("master") == 1 and roles[master] == "master"
        assert cluster.sentinel_views() == [cluster.addresses[master]] * 3
        # The chart's first-start rule: pod 0 is the master. No process crashed or restarted to get here.
        assert master == 0
        assert all(p.alive() for p in cluster.procs.values())
        # The configured quorum is reachable and the rendered probes agree with the roles.
        ck = cluster.sentinel_client(0).execute_command("SENTINEL", "ckquorum", cluster.master_set)
        assert str(ck).startswith("OK")
        for i in range(3):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert cluster.run_probe(i, "redis", probe).returncode == 0, (i, probe)
            assert cluster.run_probe(i, "sentinel", "readinessProbe").returncode == 0
            assert cluster.run_probe(i, "sentinel", "livenessProbe").returncode == 0
        # A write on the master reaches both replicas.
        cluster.client(master).set("probe:key", "x")
        assert cluster.client(master).execute_command("WAIT", 2, 2000) == 2
        # Auth is on: no password, no access (to Redis or Sentinel).
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=cluster.addresses[master], port=cluster.redis_port, retry=NO_RETRY).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=cluster.addresses[master], port=cluster.sentinel_port, retry=NO_RETRY).ping()
        # Sentinel has its own password (sentinel-password): the Redis password does not open it, and the
        # Sentinel password does not open Redis. The Sentinels still reached the Redis nodes (auth-pass =
        # redis-password) and each other (sentinel-pass): wait_stable saw 2 replicas and 2 other Sentinels.
        assert cluster.sentinel_password and cluster.sentinel_password != cluster.password
        for i in range(3):
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(host=cluster.addresses[i], port=cluster.sentinel_port, password=cluster.password,
                            retry=NO_RETRY).ping()
            assert redis.Redis(host=cluster.addresses[i], port=cluster.sentinel_port,
                               password=cluster.sentinel_password, retry=NO_RETRY).ping()
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(host=cluster.addresses[i], port=cluster.redis_port, password=cluster.sentinel_password,
                            retry=NO_RETRY).ping()
        # An ACL user of a service reaches its own key prefix only, on the master and after replication.
        svc_password = cluster.secret_env("redis", "ACL_USER_0_PASSWORD")
        svc = redis.Redis(host=cluster.addresses[master], port=cluster.redis_port, username="user-service",
                          password=svc_password, decode_responses=True, retry=NO_RETRY)
        svc.set("user:42", "ok")
        with pytest.raises(redis.exceptions.NoPermissionError):
            svc.set("auth:42", "no")
        with pytest.raises(redis.exceptions.NoPermissionError):
            svc.flushall()
        replica_c = redis.Redis(host=cluster.addresses[(master + 1) % 3], port=cluster.redis_port,
                                username="user-service", password=svc_password, decode_responses=True)
        wait_until(lambda: replica_c.get("user:42") == "ok", 5, "the ACL user's write on a replica")
        # The probes fail once Redis is gone.
        replica = next(i for i in range(3) if i != master)
        cluster.signal(f"redis-{replica}", signal.SIGKILL)
        cluster.procs[f"redis-{replica}"].popen.wait(timeout=10)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert cluster.run_probe(replica, "redis", probe).returncode != 0, probe


def test_existing_secret_without_sentinel_password_keeps_sentinel_on_the_redis_password(tmp_path) -> None:
    # A Secret made for chart 0.2 has only redis-password: Sentinel, the scripts and HAProxy's Sentinel
    # check must all fall back to it (the SENTINEL_PASSWORD ref is optional).
    require_binaries(*BINARIES)
    legacy = {"legacy-redis": {"redis-password": "legacy-pass-0123456789"}}
    with started(lambda: RedisHarness(workdir=tmp_path, secrets=legacy,
                                      set_values=("auth.existingSecret=legacy-redis",)),
                 lambda h: h.start_all()) as cluster:
        assert not [o for o in cluster.objects if o.kind == "Secret"]
        assert cluster.secret_env("sentinel", "SENTINEL_PASSWORD") is None
        master = cluster.wait_stable()
        for i in range(3):
            assert redis.Redis(host=cluster.addresses[i], port=cluster.sentinel_port,
                               password="legacy-pass-0123456789", retry=NO_RETRY).ping()
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(host=cluster.addresses[i], port=cluster.sentinel_port, retry=NO_RETRY).ping()
        wait_until(lambda: cluster.proxy_status() == {f"node{i}": ("UP" if i == master else "DOWN") for i in range(3)},
                   20, "HAProxy to pass both checks for the master with the redis-password")
        assert cluster.proxy_client().set("legacy:key", "1")


def test_killed_master_is_replaced_without_losing_acked_writes_and_rejoins_fenced(cluster: RedisHarness) -> None:
    # SIGKILL of the master pod while a client writes through Sentinel (WAIT 1 acknowledges a write).
    result = kill_master_and_measure(cluster, "kill")
    print(f"failover after SIGKILL: {result['failover_s']}s, acknowledged writes {result['acked_writes']}")
    old, new = result["old_master"], result["new_master"]
    assert new != old
    assert result["acked_writes"] > 20
    assert result["acked_writes_lost"] == 0, f"acknowledged writes missing on the new master: {result['lost_keys']}"
    new_host = cluster.addresses[new]

    # Restart the killed pod with the chart's start scripts; from its first answer it must be a replica.
    cluster.start_pod(old)
    roles_seen: set[str] = set()

    def replica_in_sync() -> bool:
        info = cluster.role(old)
        roles_seen.add(info["role"])
        return (info["role"] == "slave" and info["master_host"] == new_host
                and info["master_link_status"] == "up" and info["master_sync_in_progress"] == 0)

    wait_until(replica_in_sync, 60, f"pod {old} to rejoin as a replica of {new_host}", interval=0.05)
    assert roles_seen == {"slave"}, f"the old master answered with roles {roles_seen}"
    assert cluster.wait_stable() == new
    assert missing_writes(cluster, result["log"], old) == []

    # The write-safe endpoint reaches the new master only.
    wait_until(lambda: cluster.proxy_status() == {f"node{i}": ("UP" if i == new else "DOWN") for i in range(3)},
               20, "HAProxy to mark only the new master UP")
    proxy = cluster.proxy_client()
    assert proxy.execute_command("CLIENT", "INFO").split("laddr=")[1].startswith(f"{new_host}:")

    # Fencing: make the old master a second master behind Sentinel's back (what a partitioned old master
    # looks like). HAProxy must keep every connection on the new master while both claim role:master.
    cluster.client(old).execute_command("REPLICAOF", "NO", "ONE")
    assert cluster.role(old)["role"] == "master"
    deadline = time.monotonic() + 4
    n = 0
    while time.monotonic() < deadline:
        n += 1
        c = cluster.proxy_client()
        try:
            laddr = c.execute_command("CLIENT", "INFO").split("laddr=")[1].split()[0]
            assert laddr.startswith(f"{new_host}:"), f"HAProxy connected a client to {laddr}"
            c.set(f"fence:{n}", "1")
        except redis.ConnectionError:
            pass  # refusing is allowed (fail closed); reaching the zombie is not
        finally:
            c.close()
        assert cluster.proxy_status()[f"node{old}"] != "UP"
        time.sleep(0.05)
    zombie_keys = cluster.client(old).keys("fence:*")
    assert zombie_keys == [], f"writes through the write-safe endpoint reached the old master: {zombie_keys[:5]}"
    assert len(cluster.client(new).keys("fence:*")) > 0
    # Sentinel turns the stray master back into a replica on its own.
    wait_until(lambda: cluster.role(old)["role"] == "slave", 30, "Sentinel to demote the stray master")


def test_deleting_the_master_pod_runs_both_prestop_hooks_and_hands_over_before_sentinel_stops(
        cluster: RedisHarness) -> None:
    old = cluster.wait_stable()
    old_host = cluster.addresses[old]
    writer = Writer(cluster, "prestop")
    writer.start()
    wait_until(lambda: len(writer.log.acked) >= 20, 30, "20 acknowledged writes")

    # Watch, independently of the hooks, when the Sentinels first name another master.
    switched: list[float] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set() and not switched:
            if any(v and v != old_host for v in cluster.sentinel_views()):
                switched.append(time.monotonic())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # The kubelet: both containers' preStop hooks at once; SIGTERM to each container when its own hook returns.
    t0 = time.monotonic()
    stops = cluster.terminate_pod(old)
    watching.set()
    watcher.join(timeout=5)
    redis_stop, sentinel_stop = stops["redis"], stops["sentinel"]
    assert redis_stop.hook is not None and redis_stop.hook.returncode == 0, redis_stop
    assert "handed over to" in redis_stop.hook.stderr, redis_stop.hook.stderr
    assert sentinel_stop.hook is not None and sentinel_stop.hook.returncode == 0, sentinel_stop
    assert "Sentinel stays up until the hand-over is done" in sentinel_stop.hook.stderr, sentinel_stop.hook.stderr
    assert "done; letting Sentinel stop" in sentinel_stop.hook.stderr, sentinel_stop.hook.stderr
    # The old master's Sentinel was stopped only after the Sentinels had switched to the new master.
    assert switched, "no Sentinel ever named a new master"
    assert sentinel_stop.stopped >= sentinel_stop.hook_end >= switched[0]
    # Both hooks stayed within PRESTOP_TIMEOUT, and the pod is gone.
    prestop_timeout = int(cluster.env_value("redis", "PRESTOP_TIMEOUT"))
    assert max(redis_stop.hook_end, sentinel_stop.hook_end) - t0 < prestop_timeout
    assert not cluster.procs[f"redis-{old}"].alive() and not cluster.procs[f"sentinel-{old}"].alive()
    # The hand-over completed: the remaining Sentinels agree on one new master, and the write-safe
    # endpoint follows it.
    views = [v for i, v in enumerate(cluster.sentinel_views()) if i != old]
    assert len(set(views)) == 1 and views[0] not in (None, old_host), views
    new = cluster.index_of(str(views[0]))
    wait_until(lambda: cluster.proxy_status()[f"node{new}"] == "UP", 20, "HAProxy to mark the new master UP")
    cluster.proxy_client().set("prestop:proxy", "1")
    time.sleep(1.5)
    log = writer.stop()
    # The longest run of failed writes: from the pause to the clients' switch to the new master.
    gaps = [b - a for a, b in zip(log.successes, log.successes[1:])]
    window = max(gaps) if gaps else float("inf")
    print(f"pod deletion: hooks took redis {redis_stop.hook_end - t0:.2f}s, sentinel {sentinel_stop.hook_end - t0:.2f}s; "
          f"longest gap between acknowledged writes {window:.2f}s")
    assert len(log.acked) > 20
    assert missing_writes(cluster, log, new) == []
    # A hand-over, not a failure detection: writes resumed well before Sentinel could even declare a
    # master down (down-after-milliseconds).
    assert window < cluster.down_after_ms / 1000


def test_whole_cluster_restart_keeps_the_last_master_and_its_data(cluster: RedisHarness) -> None:
    # Move the master off pod 0 (a planned hand-over), so "pod 0 on a first start" cannot pass by luck.
    old = cluster.wait_stable()
    done = cluster.run_prestop(old)
    assert done.returncode == 0, done.stderr
    master = agreed_master(cluster)
    assert master != old
    cluster.wait_stable()
    if master == 0:  # hand over once more: the test needs a master other than pod 0
        assert cluster.run_prestop(master).returncode == 0
        master = agreed_master(cluster)
        cluster.wait_stable()
    c = cluster.client(master)
    c.set("restart:key", "kept")
    assert c.execute_command("WAIT", 2, 2000) == 2
    # Stop every process (a node-wide outage), then start all six at once from the same volumes.
    for i in range(3):
        cluster.stop(f"redis-{i}")
        cluster.stop(f"sentinel-{i}")
    cluster.start_all(proxy=False)
    assert cluster.wait_stable() == master
    assert cluster.client(master).get("restart:key") == "kept"


def test_a_taken_address_stops_the_start_with_one_line_naming_it_and_its_holder(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_binaries(*BINARIES)
    with netutil.claim_block() as block:
        h = RedisHarness(workdir=tmp_path, block=block)
        with h, netutil.bind_listener(h.addresses[1], h.redis_port):
            # Seen before starting: nothing is started.
            with pytest.raises(netutil.BindError) as before:
                h.start_all()
            # The holder's command line as the message shows it (cut: pytest's own, outside xdist, is long).
            cmd = netutil._owner(netutil.blocking(h.addresses[1], h.redis_port)[0].inode)[1][:netutil.OWNER_CMD_CHARS]
            assert str(before.value) == (f"cannot bind {h.addresses[1]}:{h.redis_port}: held by pid {os.getpid()} "
                                         f"({cmd}) listening on {h.addresses[1]}:{h.redis_port}")
            assert h.procs == {}
            # Taken between the check and the daemon's own bind (the race): redis-server exits, its log says
            # so, and the start fails the same way, with every process it started gone.
            monkeypatch.setattr(h, "_check_free", lambda keys: None)
            with pytest.raises(netutil.BindError, match=rf"^cannot bind {h.addresses[1]}:{h.redis_port}: held by pid "
                                                        rf"{os.getpid()} "):
                h.start_all()
            assert h.procs and not any(p.alive() for p in h.procs.values())
