"""charts/nova microservices, rendered through real helm 4 and helm 3: replicas, ports, HPA bounds, selectors,
probes, restricted security context, resources per profile, the resilience env, start-up waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CHARTS, VALUES, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
LOCAL = VALUES / "local.yaml"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
PROFILES = [p for p in chart_files.profiles(CHART)]
PROFILE_IDS = [p.name for p in PROFILES]

# The spec's microservices table (messaging-service sized like auth-service, port 8082).
SPEC = {
    "user-service": {"replicas": 3, "port": 8080, "hpa": (3, 10),
                     "requests": ("500m", "512Mi"), "limits": ("2000m", "2Gi")},
    "auth-service": {"replicas": 2, "port": 8084, "hpa": (2, 6),
                     "requests": ("250m", "256Mi"), "limits": ("1000m", "512Mi")},
    "search-service": {"replicas": 2, "port": 8086, "hpa": (2, 6),
                       "requests": ("250m", "256Mi"), "limits": ("1000m", "512Mi")},
    "streaming-api": {"replicas": 2, "port": 8081, "hpa": (2, 6),
                      "requests": ("250m", "256Mi"), "limits": ("1000m", "512Mi")},
    "messaging-service": {"replicas": 2, "port": 8082, "hpa": (2, 6),
                          "requests": ("250m", "256Mi"), "limits": ("1000m", "512Mi")},
}
RESILIENCE = {
    "HTTP_REQUEST_TIMEOUT": "3s", "HTTP_CONNECT_TIMEOUT": "1s", "HTTP_POOL_SIZE": "50",
    "CIRCUIT_BREAKER_FAILURE_RATE": "50", "RETRY_ATTEMPTS": "3", "RETRY_BACKOFF": "100ms",
}


def nova_objects(objs: list[KubeObject], kind: str | None = None) -> list[KubeObject]:
    """Objects from the umbrella's own templates (not the subcharts')."""
    return [o for o in objs if (o.source or "").startswith("nova/templates/") and (kind is None or o.kind == kind)]


def by_component(objs: list[KubeObject], kind: str) -> dict[str, KubeObject]:
    return {o["metadata"]["labels"]["app.kubernetes.io/component"]: o for o in nova_objects(objs, kind)}


def pod_specs(objs: list[KubeObject]) -> Iterator[tuple[KubeObject, dict[str, Any], dict[str, Any]]]:
    """(object, pod metadata, pod spec) of every workload and bare Pod."""
    for o in objs:
        if o.kind == "Pod":
            yield o, o["metadata"], o["spec"]
        elif o.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"} or o.kind == "Job":
            yield o, o["spec"]["template"]["metadata"], o["spec"]["template"]["spec"]
        elif o.kind == "CronJob":
            tpl = o["spec"]["jobTemplate"]["spec"]["template"]
            yield o, tpl["metadata"], tpl["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def main_container(dep: KubeObject) -> dict[str, Any]:
    name = dep["metadata"]["labels"]["app.kubernetes.io/component"]
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------------- inventory


def test_production_profile_matches_the_spec_inventory(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    deps = by_component(objs, "Deployment")
    services = by_component(objs, "Service")
    hpas = by_component(objs, "HorizontalPodAutoscaler")
    assert set(deps) == set(SPEC)
    for name, want in SPEC.items():
        dep = deps[name]
        # With an HPA the Deployment leaves replicas to it; the spec's count is the HPA floor.
        assert "replicas" not in dep["spec"], f"{name}: replicas must be left to the HPA"
        assert (hpas[name]["spec"]["minReplicas"], hpas[name]["spec"]["maxReplicas"]) == want["hpa"], name
        assert hpas[name]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                        "name": dep.name}
        ports = {p["name"]: p for p in services[name]["spec"]["ports"]}
        assert ports["http"]["port"] == want["port"] and ports["http"]["targetPort"] == "http"
        assert services[name]["spec"]["type"] == "ClusterIP"
        res = main_container(dep)["resources"]
        assert (res["requests"]["cpu"], res["requests"]["memory"]) == want["requests"], name
        assert (res["limits"]["cpu"], res["limits"]["memory"]) == want["limits"], name


def test_default_values_give_user_service_an_hpa_from_3_to_10_and_the_others_fixed_replicas(helm_major: int) -> None:
    objs = render(CHART, major=helm_major)
    hpas = by_component(objs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"user-service"}
    assert (hpas["user-service"]["spec"]["minReplicas"], hpas["user-service"]["spec"]["maxReplicas"]) == (3, 10)
    deps = by_component(objs, "Deployment")
    for name, want in SPEC.items():
        if name != "user-service":
            assert deps[name]["spec"]["replicas"] == want["replicas"], name


def test_local_profile_runs_one_small_replica_per_service_without_hpa(helm_major: int) -> None:
    objs = render(CHART, [LOCAL], major=helm_major)
    assert not nova_objects(objs, "HorizontalPodAutoscaler")
    for name, dep in by_component(objs, "Deployment").items():
        assert dep["spec"]["replicas"] == 1, name
        res = main_container(dep)["resources"]
        assert res["requests"] == {"cpu": "10m", "memory": "32Mi"}, name
        assert res["limits"]["memory"] == "64Mi", name


def test_each_container_listens_on_its_spec_port_with_a_named_metrics_port(helm_major: int) -> None:
    objs = render(CHART, major=helm_major)
    for name, dep in by_component(objs, "Deployment").items():
        ports = {p["name"]: p["containerPort"] for p in main_container(dep)["ports"]}
        assert ports == {"http": SPEC[name]["port"], "metrics": 9090}, name
        env = {e["name"]: e.get("value") for e in main_container(dep)["env"]}
        assert env["HTTP_PORT"] == str(SPEC[name]["port"])


def test_a_service_port_below_1024_is_refused_with_the_key_to_change() -> None:
    with pytest.raises(helm.HelmError, match=r"at '/services/microservices/auth-service/port': minimum: got 80"):
        render(CHART, set_values=["services.microservices.auth-service.port=80"])


def test_hpa_maximum_below_the_replica_floor_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"user-service\.autoscaling\.maxReplicas=2 is below"):
        render(CHART, set_values=["services.microservices.user-service.autoscaling.maxReplicas=2"])


def test_a_call_to_an_unknown_service_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r'user-service\.calls names "billing-service"'):
        render(CHART, set_values=["services.microservices.user-service.calls={billing-service}"])


# ---------------------------------------------------------------------------------------------- selectors


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_pdb_and_service_selects_exactly_the_pods_of_its_own_service(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    deps = nova_objects(objs, "Deployment")
    assert deps
    for kind, get_selector in (("PodDisruptionBudget", lambda o: o["spec"]["selector"]["matchLabels"]),
                               ("Service", lambda o: o["spec"]["selector"])):
        found = nova_objects(objs, kind)
        assert len(found) == len(deps), f"one {kind} per service"
        for obj in found:
            component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            matched = [d for d in objs if d.kind in {"Deployment", "StatefulSet", "Pod"}
                       and d.namespace == obj.namespace
                       and selects(get_selector(obj), (d["spec"]["template"]["metadata"]["labels"]
                                                       if d.kind != "Pod" else d["metadata"]["labels"]))]
            assert [m.name for m in matched] == [f"nova-{component}"], f"{obj.ref} selects {[m.ref for m in matched]}"
            dep = matched[0]
            assert selects(dep["spec"]["selector"]["matchLabels"], dep["spec"]["template"]["metadata"]["labels"])
            if kind == "Service":
                names = {p["name"] for p in main_container(dep)["ports"]}
                assert {p["targetPort"] for p in obj["spec"]["ports"]} <= names


def test_pdb_uses_max_unavailable_by_default_and_min_available_when_set(helm_major: int) -> None:
    pdbs = by_component(render(CHART, major=helm_major), "PodDisruptionBudget")
    assert all(p["spec"] == {"maxUnavailable": 1, "selector": p["spec"]["selector"]} for p in pdbs.values())
    pdbs = by_component(render(CHART, set_values=["services.microservices.user-service.pdb.minAvailable=2"],
                               major=helm_major), "PodDisruptionBudget")
    assert pdbs["user-service"]["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdbs["user-service"]["spec"]


# ---------------------------------------------------------------------------------------------- pods


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_container_of_the_chart_runs_restricted_with_requests_and_a_memory_limit(
    profile: str, helm_major: int
) -> None:
    objs = nova_objects(render(CHART, chart_files.profile_values(profile), major=helm_major))
    seen = 0
    for obj, _meta, spec in pod_specs(objs):
        pod_sc = spec.get("securityContext") or {}
        assert spec.get("automountServiceAccountToken") is False, obj.ref
        for c in containers(spec):
            seen += 1
            where = f"{obj.ref} container {c['name']}"
            sc = c.get("securityContext") or {}
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert int(sc.get("runAsUser", pod_sc.get("runAsUser", 0))) > 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", where
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp, f"{where}: /tmp must be a writable emptyDir (root filesystem is read-only)"
            vol = next(v for v in spec["volumes"] if v["name"] == tmp[0]["name"])
            assert "emptyDir" in vol, where
    assert seen >= 10


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_every_pod_of_every_chart_has_a_restricted_security_context_and_memory_limits(
    profile: str, helm_major: int
) -> None:
    """All pods of a profile, the subcharts' included (Done-when of issue 2)."""
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    problems = []
    for obj, _meta, spec in pod_specs(objs):
        pod_sc = spec.get("securityContext") or {}
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            where = f"{obj.ref} ({obj.source}) container {c['name']}"
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{where}: runAsNonRoot")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation")
            if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                problems.append(f"{where}: drop ALL")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem")
            if "memory" not in (c.get("resources") or {}).get("limits", {}):
                problems.append(f"{where}: memory limit")
            if not (c.get("resources") or {}).get("requests"):
                problems.append(f"{where}: requests")
    assert not problems, "\n".join(problems)


def test_probes_use_the_http_port_and_paths_are_configurable(helm_major: int) -> None:
    objs = render(CHART, set_values=["services.microservices.auth-service.probes.readiness.path=/ready",
                                     "services.defaults.probes.liveness.path=/live"], major=helm_major)
    for name, dep in by_component(objs, "Deployment").items():
        c = main_container(dep)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["port"] == "http", (name, probe)
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == ("/ready" if name == "auth-service" else "/healthz")
        assert c["livenessProbe"]["httpGet"]["path"] == "/live"
        assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 60


@pytest.mark.parametrize(("kube", "pre_stop"), [
    ("1.29.0", {"exec": {"command": ["sleep", "5"]}}),  # no sleep action before 1.30: run sleep in the image
    ("1.30.0", {"sleep": {"seconds": 5}}),
    ("1.33.0", {"sleep": {"seconds": 5}}),  # native: distroless images have no sleep binary
])
def test_pods_drain_before_sigterm_within_a_30_second_grace_period(kube: str, pre_stop: dict, helm_major: int) -> None:
    for name, dep in by_component(render(CHART, major=helm_major, kube_version=kube), "Deployment").items():
        assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
        assert main_container(dep)["lifecycle"]["preStop"] == pre_stop, (kube, name)


def test_the_exec_pause_can_be_forced_on_a_cluster_with_the_sleep_action(helm_major: int) -> None:
    deps = by_component(render(CHART, set_values=["services.microservices.user-service.preStop.action=exec"],
                               major=helm_major, kube_version="1.33.0"), "Deployment")
    assert main_container(deps["user-service"])["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    assert main_container(deps["auth-service"])["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}


def test_rollouts_surge_with_soft_anti_affinity_and_replace_in_place_with_hard(helm_major: int) -> None:
    deps = by_component(render(CHART, set_values=["services.microservices.auth-service.antiAffinity=hard"],
                               major=helm_major), "Deployment")
    # Soft: a surge pod may share a node, so no pod goes down before its replacement is ready.
    assert deps["user-service"]["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    # Hard on a cluster with as many nodes as replicas: a surge pod would stay Pending forever.
    assert deps["auth-service"]["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def test_the_update_strategy_is_a_value_per_service(helm_major: int) -> None:
    deps = by_component(render(CHART, major=helm_major, set_values=[
        "services.microservices.auth-service.antiAffinity=hard",
        "services.microservices.auth-service.strategy.rollingUpdate.maxUnavailable=2",
        "services.microservices.search-service.strategy.type=Recreate",
        "services.defaults.strategy.rollingUpdate.maxSurge=1"]), "Deployment")
    assert deps["auth-service"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 2}
    assert deps["search-service"]["spec"]["strategy"] == {"type": "Recreate"}
    assert deps["user-service"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_a_rollout_that_can_neither_surge_nor_take_a_pod_down_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"services\.microservices\.auth-service\.strategy: maxSurge and "
                                             r"maxUnavailable are both 0"):
        render(CHART, set_values=["services.microservices.auth-service.antiAffinity=hard",
                                  "services.microservices.auth-service.strategy.rollingUpdate.maxUnavailable=0"])


def test_split_namespaces_scenario_with_hard_anti_affinity_never_surges(helm_major: int) -> None:
    objs = render(CHART, [CHART / "ci" / "split-namespaces-values.yaml"], major=helm_major)
    for name, dep in by_component(objs, "Deployment").items():
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}, name


def test_a_pre_stop_pause_as_long_as_the_grace_period_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"preStop\.sleepSeconds=30 must be shorter than terminationGrace"):
        render(CHART, set_values=["services.defaults.preStop.sleepSeconds=30"])


def test_anti_affinity_is_soft_by_default_and_hard_on_request_with_topology_spread(helm_major: int) -> None:
    soft = by_component(render(CHART, major=helm_major), "Deployment")["auth-service"]["spec"]["template"]["spec"]
    terms = soft["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "auth-service"
    assert {t["topologyKey"] for t in soft["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    hard = by_component(render(CHART, set_values=["services.microservices.auth-service.antiAffinity=hard"],
                               major=helm_major), "Deployment")
    anti = hard["auth-service"]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in (
        hard["user-service"]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"])


def test_service_accounts_mount_no_api_token(helm_major: int) -> None:
    objs = render(CHART, major=helm_major)
    sas = by_component(objs, "ServiceAccount")
    assert set(sas) == set(SPEC)
    for name, dep in by_component(objs, "Deployment").items():
        assert sas[name]["automountServiceAccountToken"] is False
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == sas[name].name


def test_image_registry_repository_and_tag_are_per_service_and_global_registry_wins(helm_major: int) -> None:
    deps = by_component(render(CHART, major=helm_major), "Deployment")
    assert main_container(deps["user-service"])["image"] == "ghcr.io/nova/user-service:0.2.0"
    deps = by_component(render(CHART, set_values=[
        "services.microservices.search-service.image.repository=acme/search",
        "services.microservices.search-service.image.tag=1.4.2",
        "global.imageRegistry=mirror.example.com"], major=helm_major), "Deployment")
    assert main_container(deps["search-service"])["image"] == "mirror.example.com/acme/search:1.4.2"
    assert main_container(deps["auth-service"])["image"] == "mirror.example.com/nova/auth-service:0.2.0"
    init = deps["auth-service"]["spec"]["template"]["spec"]["initContainers"][0]
    assert init["image"] == "mirror.example.com/e2e-test-images/agnhost:2.52"


def test_local_profile_runs_agnhost_netexec_on_each_service_port(helm_major: int) -> None:
    for name, dep in by_component(render(CHART, [LOCAL], major=helm_major), "Deployment").items():
        c = main_container(dep)
        assert c["image"] == "registry.k8s.io/e2e-test-images/agnhost:2.52"
        assert c["args"] == ["netexec", "--http-port=$(HTTP_PORT)"]
        # $(HTTP_PORT) expands from the container's own env, which carries the service's port.
        assert {"name": "HTTP_PORT", "value": str(SPEC[name]["port"])} in c["env"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"


# ---------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_resilience_settings_reach_every_service_container_as_env(profile: str, helm_major: int) -> None:
    objs = render(CHART, chart_files.profile_values(profile), major=helm_major)
    configmaps = {(o.namespace, o.name): o for o in objs if o.kind == "ConfigMap"}
    deps = nova_objects(objs, "Deployment")
    assert deps
    for dep in deps:
        refs = [e["configMapRef"]["name"] for e in main_container(dep).get("envFrom", []) if "configMapRef" in e]
        assert len(refs) == 1, dep.ref
        data = configmaps[(dep.namespace, refs[0])]["data"]
        assert {k: data[k] for k in RESILIENCE} == RESILIENCE, dep.ref
        assert data["LOG_FORMAT"] == "json"
        explicit = {e["name"] for e in main_container(dep).get("env", [])}
        assert not explicit & set(RESILIENCE), f"{dep.ref}: explicit env would shadow the ConfigMap"


def test_resilience_defaults_are_overridable_per_service(helm_major: int) -> None:
    objs = render(CHART, set_values=["services.microservices.search-service.resilience.retryAttempts=5",
                                     "services.defaults.resilience.httpRequestTimeout=2s"], major=helm_major)
    cms = by_component(objs, "ConfigMap")
    assert cms["search-service"]["data"]["RETRY_ATTEMPTS"] == "5"
    assert cms["user-service"]["data"]["RETRY_ATTEMPTS"] == "3"
    assert {cm["data"]["HTTP_REQUEST_TIMEOUT"] for cm in cms.values() if "HTTP_REQUEST_TIMEOUT" in cm["data"]} == {"2s"}


def test_config_checksum_changes_only_for_the_service_whose_config_changed(helm_major: int) -> None:
    def sums(*sets: str) -> dict[str, str]:
        deps = by_component(render(CHART, set_values=list(sets), major=helm_major), "Deployment")
        return {n: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for n, d in deps.items()}

    before, after = sums(), sums("services.microservices.search-service.resilience.retryAttempts=4")
    assert {n for n in before if before[n] != after[n]} == {"search-service"}


def test_peer_urls_point_at_the_called_services(helm_major: int) -> None:
    cms = by_component(render(CHART, PRODUCTION, major=helm_major), "ConfigMap")
    assert cms["user-service"]["data"]["AUTH_SERVICE_URL"] == (
        "http://nova-auth-service.nova-services.svc.cluster.local:8084")
    assert cms["streaming-api"]["data"]["USER_SERVICE_URL"] == (
        "http://nova-user-service.nova-services.svc.cluster.local:8080")


# ---------------------------------------------------------------------------------------------- start-up


def test_init_container_waits_a_bounded_time_for_redis_and_postgres(helm_major: int) -> None:
    deps = by_component(render(CHART, PRODUCTION, major=helm_major), "Deployment")
    init = deps["user-service"]["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-dependencies"]
    env = {e["name"]: e["value"] for e in init[0]["env"]}
    assert env["WAIT_FOR"].split() == [
        "redis-sentinel.nova-redis.svc.cluster.local:26379",
        "redis-master.nova-redis.svc.cluster.local:6379",
        # production connects through the PgBouncer pooler: the address the service will use is the one it waits for
        "postgres-pooler-rw.nova-database.svc.cluster.local:6432",
    ]
    assert env["WAIT_TIMEOUT_SECONDS"] == "120" and env["WAIT_ON_TIMEOUT"] == "fail"


def test_a_service_can_start_degraded_or_skip_the_wait(helm_major: int) -> None:
    deps = by_component(render(CHART, set_values=[
        "services.microservices.search-service.waitFor.onTimeout=continue",
        "services.microservices.auth-service.waitFor.enabled=false",
        "services.microservices.streaming-api.waitFor.postgres=false"], major=helm_major), "Deployment")
    search = {e["name"]: e["value"] for e in deps["search-service"]["spec"]["template"]["spec"]["initContainers"][0]["env"]}
    assert search["WAIT_ON_TIMEOUT"] == "continue"
    assert "initContainers" not in deps["auth-service"]["spec"]["template"]["spec"]
    streaming = deps["streaming-api"]["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert ":5432" not in next(e["value"] for e in streaming if e["name"] == "WAIT_FOR")


def test_an_unknown_timeout_behaviour_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"at '/services/defaults/waitFor/onTimeout': value must be one of"):
        render(CHART, set_values=["services.defaults.waitFor.onTimeout=ignore"])


def test_global_pull_secrets_reach_every_pod_as_names_or_maps(helm_major: int) -> None:
    objs = render(CHART, set_values=["global.imagePullSecrets[0]=regcred", "global.imagePullSecrets[1].name=mirror"],
                  major=helm_major)
    pods = list(pod_specs(nova_objects(objs)))
    assert pods
    for obj, _meta, spec in pods:
        assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}], obj.ref
