"""tools.cluster against the real charts/nova render (helm 4): the names of docs/architecture.md, the deploy
order, and the production profile's namespaces come out of the objects, not out of assumptions."""

from __future__ import annotations

import pytest

from tests.conftest import CHARTS, VALUES, render
from tools.cluster import inventory, plan


def _inv(profile: str, namespace: str = "nova") -> inventory.Inventory:
    return inventory.build(render(CHARTS / "nova", [VALUES / f"{profile}.yaml"], namespace=namespace), "nova", namespace)


@pytest.mark.parametrize(("profile", "redis", "postgres", "redis_ns", "db_ns", "svc_ns"),
                         [("local", "nova-redis", "nova-postgres", "nova", "nova", "nova"),
                          # production names the objects as the spec does (fullnameOverride redis / postgres)
                          ("production", "redis", "postgres", "nova-redis", "nova-database", "nova-services")])
def test_components_and_namespaces_of_each_profile(
    profile: str, redis: str, postgres: str, redis_ns: str, db_ns: str, svc_ns: str
) -> None:
    inv = _inv(profile)
    assert inv.redis is not None and (inv.redis.name, inv.redis.namespace) == (redis, redis_ns)
    assert inv.postgres is not None and (inv.postgres.name, inv.postgres.namespace) == (postgres, db_ns)
    etcd = [w for w in inv.phase("postgresql") if "etcd" in w.component]
    assert etcd and all(w.namespace == db_ns for w in etcd)
    services = {w.component for w in inv.phase("services")}
    assert {"user-service", "auth-service", "search-service", "streaming-api", "messaging-service"} <= services
    assert all(w.namespace == svc_ns for w in inv.phase("services"))
    master = inv.service("-master", "redis")
    primary = inv.service("-primary", "postgresql")
    assert master and (master.name, master.namespace, master.port) == (f"{redis}-master", redis_ns, 6379)
    assert primary and (primary.name, primary.namespace, primary.port) == (f"{postgres}-primary", db_ns, 5432)
    assert inv.redis.container_with_port("sentinel", 26379) and inv.redis.container_with_port("redis", 6379)


def test_deploy_plan_of_the_production_profile_waits_in_namespace_order() -> None:
    inv = _inv("production")
    waits = [st.argv for st in plan.plan_deploy(plan.Settings(), inv) if st.argv[1:3] == ("rollout", "status")]
    namespaces = [w[w.index("-n") + 1] for w in waits]
    first_db, first_svc = namespaces.index("nova-database"), namespaces.index("nova-services")
    assert set(namespaces[:first_db]) == {"nova-redis"}
    assert set(namespaces[first_db:first_svc]) == {"nova-database"}
    assert set(namespaces[first_svc:]) == {"nova-services"}
    assert "etcd" in waits[first_db][3], "etcd (Patroni's DCS) must be ready before PostgreSQL"


def test_status_finds_the_patroni_role_label_and_the_sentinel_master_set() -> None:
    inv = _inv("local")
    assert inv.role_label and inv.master_set
    leader = next(st for st in plan.plan_status(plan.Settings(), inv) if "=primary" in " ".join(st.argv))
    assert f"{inv.role_label}=primary" in leader.argv[leader.argv.index("-l") + 1]


def test_autoscaled_deployments_wait_for_their_hpa_floor() -> None:
    inv = _inv("production")
    user = next(w for w in inv.phase("services") if w.component == "user-service")
    hpa = next(o for o in render(CHARTS / "nova", [VALUES / "production.yaml"], namespace="nova")
               if o.kind == "HorizontalPodAutoscaler" and o.obj["spec"]["scaleTargetRef"]["name"] == user.name)
    assert user.replicas == hpa.obj["spec"]["minReplicas"] == 3
