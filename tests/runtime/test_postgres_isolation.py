"""Database isolation and the idempotent bootstrap, on a real Patroni cluster started from the rendered chart.

One etcd member (this module is not about etcd) and three Patroni + PostgreSQL 15 nodes; the bootstrap Job's
rendered command runs against the -primary Service, first started before any PostgreSQL node exists (the Job is
not a hook: it runs with the release and waits for the primary itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_binaries
from tests.runtime import postgres_harness as h

pytestmark = pytest.mark.runtime

ADDED = [
    "isolation.databases.nova_billing.schemas={billing}",
    "isolation.logins.billing_service.database=nova_billing",
    "isolation.logins.billing_service.schema=billing",
]


@pytest.fixture(scope="module")
def objects() -> list[Any]:
    return h.render(set_values=["etcd.replicas=1"])


@pytest.fixture(scope="module")
def started(objects: list[Any]) -> Iterator[tuple[h.Cluster, h.PendingBootstrap, int]]:
    """etcd up, then the bootstrap Job's command started before any PostgreSQL node (as Kubernetes starts the
    Job together with the StatefulSets), then the Patroni nodes."""
    require_binaries(*h.BINARIES)
    state: dict[str, Any] = {}

    def start(c: h.Cluster) -> None:
        c.start_etcd()
        state["pending"] = c.start_bootstrap()
        state["endpoints_at_start"] = len(c.endpoints("-primary"))
        for i in range(len(c.pg_pods)):
            c.start_patroni(i)
        c.wait_healthy(120)

    with h.started(lambda: h.Cluster(objects), start) as c:
        yield c, state["pending"], state["endpoints_at_start"]


@pytest.fixture(scope="module")
def cluster(started: tuple[h.Cluster, h.PendingBootstrap, int]) -> h.Cluster:
    return started[0]


@pytest.fixture(scope="module")
def first_run(started: tuple[h.Cluster, h.PendingBootstrap, int]) -> dict[str, Any]:
    result = started[1].result(timeout=180)
    assert result["returncode"] == 0, result["stderr"]
    return result


def test_bootstrap_started_before_any_primary_waits_for_it_and_applies(
        started: tuple[h.Cluster, h.PendingBootstrap, int], first_run: dict[str, Any]) -> None:
    _, pending, endpoints_at_start = started
    assert endpoints_at_start == 0, "the -primary Service already had an endpoint when the bootstrap started"
    assert pending.service.refused >= 1, "the bootstrap never met a -primary Service without endpoints"
    assert pending.service.routed >= 1 and "create database nova_core" in first_run["changes"]


def _plan(objects: list[Any]) -> dict[str, Any]:
    import json

    return json.loads(h.Chart(objects).configmap("-bootstrap")["plan.json"])


def _login_dsn(cluster: h.Cluster, login: str, db: str) -> str:
    return (f"host={cluster.service_host('-primary')} port={cluster.port('postgresql')} dbname={db} "
            f"user={login} password={cluster.secrets_flat()[f'{login}-password']} connect_timeout=3")


def test_bootstrap_creates_every_database_schema_and_login_of_the_values(
        cluster: h.Cluster, first_run: dict[str, Any], objects: list[Any]) -> None:
    plan = _plan(objects)
    changes = first_run["changes"]
    for db, spec in plan["databases"].items():
        assert f"create database {db}" in changes
        for schema in spec["schemas"]:
            assert f"create schema {db}.{schema}" in changes
    for login in plan["logins"]:
        assert f"create login {login}" in changes
    dsn = cluster.superuser_dsn(cluster.service_host("-primary"))
    public = h.query(dsn, "SELECT d.datname FROM pg_database d, aclexplode(COALESCE(d.datacl, acldefault('d', "
                          "d.datdba))) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'")
    assert {r[0] for r in public} & (set(plan["databases"]) | {"postgres"}) == set(), \
        "PUBLIC still has CONNECT on a managed database"
    attrs = h.query(dsn, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
                         "FROM pg_roles WHERE rolname = ANY(%s)", (list(plan["logins"]),))
    assert len(attrs) == len(plan["logins"])
    assert all(not any(r[1:]) for r in attrs), f"a service login has more than LOGIN: {attrs}"


def test_bootstrap_run_again_changes_nothing(cluster: h.Cluster, first_run: dict[str, Any]) -> None:
    again = cluster.run_bootstrap()
    assert again["returncode"] == 0, again["stderr"]
    assert again["changes"] == []


def test_bootstrap_with_a_service_added_applies_only_that_service(
        cluster: h.Cluster, first_run: dict[str, Any]) -> None:
    upgraded = h.render(set_values=["etcd.replicas=1", *ADDED])
    result = cluster.run_bootstrap(upgraded)
    assert result["returncode"] == 0, result["stderr"]
    changes = result["changes"]
    assert changes, "the added service changed nothing"
    assert all("billing" in c for c in changes), f"changes outside the added service: {changes}"
    assert "create database nova_billing" in changes and "create login billing_service" in changes
    assert "revoke CONNECT on database nova_billing from PUBLIC" in changes
    assert cluster.run_bootstrap(upgraded)["changes"] == []


def test_each_login_reaches_its_own_database_and_schema_only(
        cluster: h.Cluster, first_run: dict[str, Any], objects: list[Any]) -> None:
    import psycopg

    plan = _plan(objects)
    # Every login creates and reads a table in its own schema (search_path points there).
    for login, spec in plan["logins"].items():
        with psycopg.connect(_login_dsn(cluster, login, spec["database"]), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS own_{login} (v text)")
            conn.execute(f"INSERT INTO own_{login} VALUES ('x')")
            schema = conn.execute(f"SELECT schemaname FROM pg_tables WHERE tablename = 'own_{login}'").fetchone()
            assert schema == (spec["schema"],)
            assert conn.execute(f"SELECT count(*) FROM own_{login}").fetchone()[0] >= 1

    for login, spec in plan["logins"].items():
        # CONNECT refused on every other database, including postgres.
        for db in [*plan["databases"], "postgres"]:
            if db == spec["database"]:
                continue
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(_login_dsn(cluster, login, db)).close()
        with psycopg.connect(_login_dsn(cluster, login, spec["database"]), autocommit=True) as conn:
            # SELECT and CREATE refused in every other schema of its database, and in public.
            for other, other_spec in plan["logins"].items():
                if other_spec["database"] != spec["database"] or other_spec["schema"] == spec["schema"]:
                    continue
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT * FROM {other_spec['schema']}.own_{other}")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"CREATE TABLE {other_spec['schema']}.intruder_{login} (v int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"CREATE TABLE public.intruder_{login} (v int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE SCHEMA intruder")


def test_role_label_callback_may_label_only_the_statefulset_pods(cluster: h.Cluster) -> None:
    import subprocess

    pod = cluster.pg_pods[0]
    callback = cluster.pod_env(pod)
    script = str(cluster.config_dir(0) / "role_label.py")

    def run(pod_name: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**callback, "POD_NAME": pod_name}
        return subprocess.run([h.SYSTEM_PYTHON, script, *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False)

    intruder = f"{pod.name.rsplit('-', 1)[0]}-99"
    denied = run(intruder, "on_role_change", "master", "nova-postgres")
    assert denied.returncode == 1 and "403" in denied.stderr
    assert ("patch", intruder) in [(r.verb, r.name) for r in cluster.api.denied]
    assert cluster.api.label_of(cluster.ns, intruder, cluster.role_label) is None
    cluster.api.denied.clear()
    assert run(pod.name, "on_reload", "replica", "nova-postgres").returncode == 0  # says nothing about the role
    assert run(pod.name, "bogus").returncode == 2
