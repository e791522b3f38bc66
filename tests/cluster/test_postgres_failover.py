"""PostgreSQL: deleting the Patroni leader's pod elects a new leader, the primary Service follows it,
and rows committed (and replayed by the replicas) before the failover survive."""

from __future__ import annotations

import shlex
import uuid

import pytest
import yaml

from tests.cluster.support import Nova, wait_until

pytestmark = pytest.mark.cluster


def patroni_superuser(nova: Nova, namespace: str) -> str:
    """The superuser name from the rendered Patroni configuration (the same file the pods mount)."""
    for cm in nova.rendered("ConfigMap"):
        text = (cm.obj.get("data") or {}).get("patroni.yml")
        if text and (cm.namespace or nova.namespace) == namespace:
            return yaml.safe_load(text)["postgresql"]["authentication"]["superuser"]["username"]
    return "postgres"


def test_deleting_the_postgres_leader_elects_a_new_leader_the_primary_service_follows_and_rows_survive(
    nova: Nova, all_ready: None
) -> None:
    w = nova.inv.postgres
    assert w is not None, "no PostgreSQL StatefulSet in the render"
    ns = w.namespace
    container = w.container_with_port("postgresql", 5432) or w.containers[0]
    superuser = nova.env_value(w, "PATRONI_SUPERUSER_USERNAME", "") or patroni_superuser(nova, ns)
    secret = nova.env_secret(w, "PATRONI_SUPERUSER_PASSWORD") or nova.env_secret(w, "superuser-password")
    assert secret, f"{w.name}: no env refers to the superuser password Secret"
    password = nova.secret_value(ns, *secret)
    primary = nova.inv.service("-primary", "postgresql")
    assert primary, "no <release>-postgres-primary Service in the render"
    primary_host = f"{primary.name}.{primary.namespace}.svc"

    def psql(pod: str, sql: str, host: str = "127.0.0.1") -> str:
        return nova.sh(ns, pod, container,
                       f'PGPASSWORD="$(cat)" psql -h {host} -U {superuser} -d postgres -v ON_ERROR_STOP=1 -tAc '
                       f"{shlex.quote(sql)}", stdin=password).strip()

    def leader() -> str | None:
        live = {p["metadata"]["name"] for p in nova.running_pods(w)}
        labelled = [p["metadata"]["name"] for p in nova.pods(w, f"{nova.inv.role_label}=primary")]
        names = [n for n in labelled if n in live]
        if len(names) == 1 and psql(names[0], "SELECT pg_is_in_recovery()") == "f":
            return names[0]
        return None

    old = wait_until("one PostgreSQL leader", leader, 60)
    table = f"nova_ct_{uuid.uuid4().hex[:8]}"
    psql(old, f"CREATE TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} SELECT generate_series(1, 1000)")
    lsn = psql(old, "SELECT pg_current_wal_lsn()")
    wait_until("every replica to replay the committed rows",
               lambda: int(psql(old, f"SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= '{lsn}'"))
               >= w.replicas - 1, 60)
    try:
        nova.kubectl("delete", "pod", old, "-n", ns, "--wait=false")
        new = wait_until(f"Patroni to elect a new leader after deleting {old}",
                         lambda: (n := leader()) and n != old and n, 180)
        wait_until(f"Service {primary.name} to route to {new} only",
                   lambda: nova.endpoint_pods(primary.namespace, primary.name) == {new}, 60)
        assert psql(new, "SELECT pg_is_in_recovery()", host=primary_host) == "f"
        assert psql(new, f"SELECT count(*) FROM {table}", host=primary_host) == "1000"
    finally:
        current = leader()
        if current:
            psql(current, f"DROP TABLE IF EXISTS {table}")
