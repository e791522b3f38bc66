"""PostgreSQL: deleting the Patroni leader's pod elects a new leader, the primary Service follows it,
and rows committed (and replayed by the replicas) before the failover survive.

Every connection starts from the client pod (the helm test pods' identity, which the PostgreSQL
NetworkPolicy admits), as the superuser over the pods' stable names and the -primary Service.
"""

from __future__ import annotations

import uuid

import pytest

from tests.cluster.support import ClientPod, Nova, pod_host, reaches, wait_until
from tools.cluster.access import CLIENT, DNS, Access

pytestmark = pytest.mark.cluster


@reaches(Access(CLIENT, DNS, "dns"), Access(CLIENT, "pod:postgres", "postgresql"),
         Access(CLIENT, "postgres-primary", "postgresql"))
def test_deleting_the_postgres_leader_elects_a_new_leader_the_primary_service_follows_and_rows_survive(
    nova: Nova, client: ClientPod, all_ready: None
) -> None:
    w = nova.inv.postgres
    assert w is not None, "no PostgreSQL StatefulSet in the render"
    ref = nova.inv.postgres_password()
    assert ref, f"{w.name}: no env refers to the superuser password Secret"
    password = nova.secret_value(ref.namespace, ref.name, ref.key)
    superuser = nova.inv.postgres_superuser
    primary = nova.inv.service("-primary", "postgresql")
    assert primary, "no <release>-postgres-primary Service in the render"
    primary_host = f"{primary.name}.{primary.namespace}.svc"

    def psql(host: str, sql: str) -> str:
        return client.psql(host, primary.port, superuser, sql, password)

    def leader() -> str | None:
        live = {p["metadata"]["name"] for p in nova.running_pods(w)}
        labelled = [p["metadata"]["name"] for p in nova.pods(w, f"{nova.inv.role_label}=primary")]
        names = [n for n in labelled if n in live]
        if len(names) == 1 and psql(pod_host(w, names[0]), "SELECT pg_is_in_recovery()") == "f":
            return names[0]
        return None

    old = wait_until("one PostgreSQL leader", leader, 60)
    assert psql(primary_host, "SELECT pg_is_in_recovery()") == "f", f"{primary_host} does not reach the primary"
    table = f"nova_ct_{uuid.uuid4().hex[:8]}"
    psql(primary_host, f"CREATE TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} SELECT generate_series(1, 1000)")
    lsn = psql(pod_host(w, old), "SELECT pg_current_wal_lsn()")
    wait_until("every replica to replay the committed rows",
               lambda: int(psql(pod_host(w, old),
                                f"SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= '{lsn}'"))
               >= w.replicas - 1, 60)
    try:
        nova.kubectl("delete", "pod", old, "-n", w.namespace, "--wait=false")
        new = wait_until(f"Patroni to elect a new leader after deleting {old}",
                         lambda: (n := leader()) and n != old and n, 180)
        wait_until(f"Service {primary.name} to route to {new} only",
                   lambda: nova.endpoint_pods(primary.namespace, primary.name) == {new}, 60)
        assert psql(primary_host, "SELECT pg_is_in_recovery()") == "f", f"{primary_host} reaches a replica"
        assert psql(primary_host, f"SELECT count(*) FROM {table}") == "1000"
    finally:
        if leader():
            psql(primary_host, f"DROP TABLE IF EXISTS {table}")
