"""Redis: deleting the master pod makes Sentinel promote a replica, the write-safe endpoint follows it,
and a write replicated before the failover is still there.

Every connection starts from the client pod (the helm test pods' identity): Sentinel with Sentinel's own
password (sentinel-password, or redis-password for an existingSecret without it), Redis with redis-password.
"""

from __future__ import annotations

import uuid

import pytest

from tests.cluster.support import ClientPod, Nova, pod_host, reaches, wait_until
from tools.cluster.access import CLIENT, DNS, Access
from tools.cluster.inventory import SecretRef

pytestmark = pytest.mark.cluster


def _value(nova: Nova, ref: SecretRef) -> str:
    """A password located by tools.cluster.inventory (with the documented fallback key)."""
    data = nova.kubectl_json("get", "secret", ref.name, "-n", ref.namespace).get("data") or {}
    key = ref.key if ref.key in data or not ref.fallback else ref.fallback
    return nova.secret_value(ref.namespace, ref.name, key)


@reaches(Access(CLIENT, DNS, "dns"), Access(CLIENT, "redis-sentinel", "sentinel"),
         Access(CLIENT, "pod:redis", "redis"), Access(CLIENT, "redis-master", "redis"))
def test_deleting_the_redis_master_pod_elects_a_new_master_and_the_write_safe_endpoint_follows(
    nova: Nova, client: ClientPod, all_ready: None
) -> None:
    w = nova.inv.redis
    assert w is not None, "no Redis StatefulSet in the render"
    redis_ref, sentinel_ref = nova.inv.redis_password(), nova.inv.sentinel_password()
    assert redis_ref and sentinel_ref, f"{w.name}: no env refers to redis-password / sentinel-password"
    redis_pw, sentinel_pw = _value(nova, redis_ref), _value(nova, sentinel_ref)
    sentinel_svc = nova.inv.service("-sentinel", "redis")
    master_svc = nova.inv.service("-master", "redis")
    assert sentinel_svc and master_svc, "no <release>-redis-sentinel / -master Service in the render"
    sentinel = f"{sentinel_svc.name}.{sentinel_svc.namespace}.svc"
    endpoint = f"{master_svc.name}.{master_svc.namespace}.svc"
    port = master_svc.port
    pod_port = next(p["containerPort"] for c in w.spec["template"]["spec"]["containers"] for p in c.get("ports") or []
                    if p.get("name") == "redis")

    def node(pod: str, command: str) -> str:
        return client.redis(pod_host(w, pod), pod_port, command, redis_pw)

    def role(out: str) -> str:
        return out.splitlines()[0] if out else ""

    def sentinel_master() -> str | None:
        """The pod Sentinel names as master (a Sentinel behind the Service; the answer must be host and port)."""
        out = client.redis(sentinel, sentinel_svc.port,
                           f"SENTINEL get-master-addr-by-name {nova.inv.master_set}", sentinel_pw).split()
        if len(out) != 2 or not out[1].isdigit():
            return None
        names = {p["metadata"]["name"] for p in nova.pods(w)}
        return next((n for n in names if out[0] == n or out[0].split(".")[0] == n), None)

    old = wait_until("Sentinel to name a master", sentinel_master, 60)
    assert role(node(old, "ROLE")) == "master"
    key = f"nova-ct-{uuid.uuid4().hex[:8]}"
    assert node(old, f"SET {key} before-failover") == "OK"
    replicas = [p["metadata"]["name"] for p in nova.running_pods(w) if p["metadata"]["name"] != old]
    wait_until("the write to reach every replica",
               lambda: all(node(r, f"GET {key}") == "before-failover" for r in replicas), 30)

    nova.kubectl("delete", "pod", old, "-n", w.namespace, "--wait=false")

    def new_master() -> str | None:
        m = sentinel_master()
        return m if m and m != old and role(node(m, "ROLE")) == "master" else None

    new = wait_until(f"Sentinel to promote a replica after deleting {old}", new_master, 120)
    # The write-safe endpoint reaches the new master: it accepts writes (a replica answers READONLY), ROLE
    # says master, and it serves what was written before the failover.
    wait_until(f"{endpoint} to accept writes", lambda: client.redis(endpoint, port, f"SET {key}-after ok",
                                                                     redis_pw) == "OK", 60)
    assert role(client.redis(endpoint, port, "ROLE", redis_pw)) == "master"
    assert client.redis(endpoint, port, f"GET {key}", redis_pw) == "before-failover"
    assert node(new, f"GET {key}-after") == "ok", "the endpoint's write did not land on Sentinel's master"
    node(new, f"DEL {key} {key}-after")
