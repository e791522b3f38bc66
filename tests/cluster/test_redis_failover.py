"""Redis: deleting the master pod makes Sentinel promote a replica, the write-safe endpoint follows it,
and a write replicated before the failover is still there."""

from __future__ import annotations

import uuid

import pytest

from tests.cluster.support import Nova, wait_until

pytestmark = pytest.mark.cluster


def test_deleting_the_redis_master_pod_elects_a_new_master_and_the_write_safe_endpoint_follows(
    nova: Nova, all_ready: None
) -> None:
    w = nova.inv.redis
    assert w is not None, "no Redis StatefulSet in the render"
    ns = w.namespace
    secret = nova.inv.redis_password_secret()
    assert secret, f"{w.name}: no env or volume refers to a Secret key redis-password"
    password = nova.secret_value(ns, *secret)
    sentinel_c = w.container_with_port("sentinel", 26379)
    redis_c = w.container_with_port("redis", 6379)
    assert sentinel_c and redis_c, f"{w.name}: expected a redis (6379) and a sentinel (26379) container"
    master_svc = nova.inv.service("-master", "redis")
    assert master_svc, "no <release>-redis-master Service in the render"
    endpoint = f"{master_svc.name}.{master_svc.namespace}.svc"

    def cli(pod: str, command: str, host: str = "127.0.0.1", port: int = 6379, container: str | None = None) -> str:
        return nova.sh(ns, pod, container or redis_c,
                       f'REDISCLI_AUTH="$(cat)" redis-cli --no-auth-warning -h {host} -p {port} {command}',
                       stdin=password).strip()

    def pod_named_by(addr: str) -> str | None:
        for p in nova.pods(w):
            if addr in (p["status"].get("podIP"), p["metadata"]["name"]) or addr.split(".")[0] == p["metadata"]["name"]:
                return p["metadata"]["name"]
        return None

    def sentinel_master() -> str | None:
        """The pod Sentinel names as master, asking each live Sentinel until one answers."""
        for p in nova.running_pods(w):
            out = cli(p["metadata"]["name"], f"SENTINEL get-master-addr-by-name {nova.inv.master_set}",
                      port=26379, container=sentinel_c).split()
            if len(out) >= 2:
                return pod_named_by(out[0])
        return None

    old = wait_until("Sentinel to name a master", sentinel_master, 60)
    assert cli(old, "ROLE").splitlines()[0] == "master"
    key = f"nova-ct-{uuid.uuid4().hex[:8]}"
    assert cli(old, f"SET {key} before-failover") == "OK"
    replicas = [p["metadata"]["name"] for p in nova.running_pods(w) if p["metadata"]["name"] != old]
    wait_until("the write to reach every replica",
               lambda: all(cli(r, f"GET {key}") == "before-failover" for r in replicas), 30)

    nova.kubectl("delete", "pod", old, "-n", ns, "--wait=false")

    def new_master() -> str | None:
        m = sentinel_master()
        return m if m and m != old and cli(m, "ROLE").splitlines()[0] == "master" else None

    new = wait_until(f"Sentinel to promote a replica after deleting {old}", new_master, 120)
    # The write-safe endpoint reaches the new master: it accepts writes (a replica answers READONLY)
    # and serves what was written before the failover.
    wait_until(f"{endpoint} to accept writes",
               lambda: cli(new, f"SET {key}-after ok", host=endpoint) == "OK", 60)
    assert cli(new, "ROLE", host=endpoint).splitlines()[0] == "master"
    assert cli(new, f"GET {key}", host=endpoint) == "before-failover"
    assert cli(new, f"GET {key}-after") == "ok", "the endpoint's write did not land on Sentinel's master"
    cli(new, f"DEL {key} {key}-after")
