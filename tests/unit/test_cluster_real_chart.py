"""tools.cluster against the real charts/nova render (helm 4): the names of docs/architecture.md, the deploy
order, and the production profile's namespaces come out of the objects, not out of assumptions."""

from __future__ import annotations

import pytest

from tests.conftest import CHARTS, VALUES, render
from tools import charts as chart_files
from tools.cluster import inventory, plan


def _inv(profile: str, namespace: str = "nova") -> inventory.Inventory:
    return inventory.build(render(CHARTS / "nova", chart_files.profile_values(profile), namespace=namespace), "nova", namespace)


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


def test_status_finds_the_patroni_role_label_and_the_sentinel_master_set_from_the_render() -> None:
    """Values unlike the inventory's defaults, so only a working lookup finds them."""
    objs = render(CHARTS / "nova", [VALUES / "local.yaml"], namespace="nova",
                  set_values=["redis.sentinel.masterSet=probe-set", "postgres.routing.roleLabel=example.org/pg-role"])
    inv = inventory.build(objs, "nova", "nova")
    assert (inv.master_set, inv.role_label) == ("probe-set", "example.org/pg-role")
    assert (inventory.DEFAULT_MASTER_SET, inventory.DEFAULT_ROLE_LABEL) != (inv.master_set, inv.role_label)
    steps = plan.plan_status(plan.Settings(), inv)
    leader = next(st for st in steps if "=primary" in " ".join(st.argv))
    assert "example.org/pg-role=primary" in leader.argv[leader.argv.index("-l") + 1]
    sentinel = next(st for st in steps if "SENTINEL get-master-addr-by-name" in " ".join(st.argv))
    assert "get-master-addr-by-name probe-set " in sentinel.argv[-1]


def test_postgres_superuser_comes_from_the_rendered_patroni_config() -> None:
    objs = render(CHARTS / "nova", [VALUES / "local.yaml"], namespace="nova",
                  set_values=["postgres.auth.superuserUsername=pgadmin"])
    assert inventory.build(objs, "nova", "nova").postgres_superuser == "pgadmin" != inventory.DEFAULT_SUPERUSER


def test_autoscaled_deployments_wait_for_their_hpa_floor() -> None:
    inv = _inv("production")
    user = next(w for w in inv.phase("services") if w.component == "user-service")
    hpa = next(o for o in render(CHARTS / "nova", chart_files.profile_values("production"), namespace="nova")
               if o.kind == "HorizontalPodAutoscaler" and o.obj["spec"]["scaleTargetRef"]["name"] == user.name)
    assert user.replicas == hpa.obj["spec"]["minReplicas"] == 3


INSTALLED = [p for chart in ("nova", "nova-redis", "nova-postgres") for p in sorted((CHARTS / chart / "ci").glob("*.yaml"))]


@pytest.mark.parametrize("scenario", INSTALLED, ids=[f"{p.parent.parent.name}/{p.name}" for p in INSTALLED])
def test_a_ci_scenario_leaves_nothing_behind_after_uninstall(scenario: object) -> None:
    """chart-testing installs each ci/*.yaml into a namespace of its own and deletes that namespace after the
    uninstall: anything kept (`helm.sh/resource-policy: keep`) elsewhere, or a kept Namespace, would stay."""
    chart = scenario.parent.parent  # type: ignore[attr-defined]
    objs = render(chart, [scenario], namespace="ct-run")
    kept = [o.ref for o in objs if ((o.get("metadata") or {}).get("annotations") or {}).get(
        "helm.sh/resource-policy") == "keep" and (o.kind == "Namespace" or (o.namespace or "ct-run") != "ct-run")]
    assert not kept, f"{scenario}: kept after uninstall: {kept}"


def test_production_keeps_its_namespaces_and_credentials_on_uninstall() -> None:
    objs = render(CHARTS / "nova", chart_files.profile_values("production"), namespace="nova")
    namespaces = [o for o in objs if o.kind == "Namespace"]
    assert namespaces and all(o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for o in namespaces)
    creds = [o for o in objs if o.kind == "Secret" and o.name.endswith("-credentials")]
    assert creds and all(o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for o in creds)
