"""charts/nova-postgres rendered with helm 4 and helm 3: objects, selectors, security, timing, isolation, secrets."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova-postgres"
PRODUCTION = CHART / "ci" / "production-values.yaml"
NS = "nova-database"


def objs(major: int = 4, values: tuple[str, ...] = (), set_values: tuple[str, ...] = (), **kw: Any
         ) -> list[KubeObject]:
    return render(CHART, values, set_values, major=major, namespace=NS, **kw)


def one(objects: list[KubeObject], kind: str, name: str) -> dict[str, Any]:
    found = [o.obj for o in objects if o.kind == kind and o.name == name]
    assert len(found) == 1, f"{kind}/{name}: {[o.ref for o in objects if o.kind == kind]}"
    return found[0]


def pod_specs(objects: list[KubeObject]) -> list[tuple[str, dict[str, Any]]]:
    return [(o.ref, o.obj["spec"]["template"]["spec"]) for o in objects
            if o.kind in ("StatefulSet", "Deployment", "Job", "DaemonSet")]


def bootstrap_job(objects: list[KubeObject]) -> dict[str, Any]:
    jobs = [o.obj for o in objects if o.kind == "Job"
            and o.obj["metadata"]["labels"].get("app.kubernetes.io/component") == "bootstrap"]
    assert len(jobs) == 1, [o.ref for o in objects if o.kind == "Job"]
    return jobs[0]


def patroni_cfg(objects: list[KubeObject], fullname: str = "nova-postgres") -> dict[str, Any]:
    return yaml.safe_load(one(objects, "ConfigMap", f"{fullname}-patroni")["data"]["patroni.yml"])


def render_error(*set_values: str) -> str:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHART, set_values=set_values, namespace=NS)
    return str(err.value)


def test_renders_three_etcd_members_and_three_postgres_pods_with_their_services(helm_major: int) -> None:
    o = objs(helm_major)
    etcd = one(o, "StatefulSet", "nova-postgres-etcd")
    pg = one(o, "StatefulSet", "nova-postgres")
    assert etcd["spec"]["replicas"] == 3 and pg["spec"]["replicas"] == 3
    assert etcd["spec"]["podManagementPolicy"] == "Parallel", "etcd members must start together"
    assert etcd["spec"]["serviceName"] == "nova-postgres-etcd-headless"
    peer = one(o, "Service", "nova-postgres-etcd-headless")
    assert peer["spec"]["clusterIP"] == "None" and peer["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in one(o, "Service", "nova-postgres-etcd")["spec"]["ports"]} == {2379}
    assert all(obj.namespace == NS for obj in o)
    args = etcd["spec"]["template"]["spec"]["containers"][0]["args"]
    cluster = next(a for a in args if a.startswith("--initial-cluster="))
    assert cluster.count("=http://") == 3
    assert "nova-postgres-etcd-2=http://nova-postgres-etcd-2.nova-postgres-etcd-headless.nova-database.svc." \
           "cluster.local:2380" in cluster
    assert etcd["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_primary_and_replicas_services_select_postgres_pods_by_the_role_label(helm_major: int) -> None:
    o = objs(helm_major)
    pg = one(o, "StatefulSet", "nova-postgres")
    pod_labels = pg["spec"]["template"]["metadata"]["labels"]
    env = {e["name"]: e.get("value") for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    role_label = env["NOVA_ROLE_LABEL"]
    for name, role in (("nova-postgres-primary", "primary"), ("nova-postgres-replicas", "replica")):
        svc = one(o, "Service", name)
        selector = dict(svc["spec"]["selector"])
        assert selector.pop(role_label) == role
        assert selector == pg["spec"]["selector"]["matchLabels"]
        assert all(pod_labels[k] == v for k, v in selector.items())
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(5432, "postgresql")]
    assert role_label not in pod_labels, "the callback, not the template, owns the role label"
    cfg = patroni_cfg(o)
    callbacks = cfg["postgresql"]["callbacks"]
    assert set(callbacks) == {"on_start", "on_stop", "on_role_change"}
    assert all(c.endswith("/etc/patroni/role_label.py") for c in callbacks.values())


def test_role_lets_each_pod_get_and_patch_only_the_statefulset_pods(helm_major: int) -> None:
    o = objs(helm_major)
    role = one(o, "Role", "nova-postgres")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"],
                              "resourceNames": ["nova-postgres-0", "nova-postgres-1", "nova-postgres-2"]}]
    binding = one(o, "RoleBinding", "nova-postgres")
    pg = one(o, "StatefulSet", "nova-postgres")
    assert binding["subjects"][0]["name"] == pg["spec"]["template"]["spec"]["serviceAccountName"]
    etcd = one(o, "StatefulSet", "nova-postgres-etcd")
    assert etcd["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_pdbs_select_exactly_the_pods_of_their_statefulset(helm_major: int) -> None:
    o = objs(helm_major)
    for sts_name in ("nova-postgres", "nova-postgres-etcd"):
        pdb = one(o, "PodDisruptionBudget", sts_name)
        sts = one(o, "StatefulSet", sts_name)
        assert pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["maxUnavailable"] == 1
    selectors = [one(o, "PodDisruptionBudget", n)["spec"]["selector"]["matchLabels"]
                 for n in ("nova-postgres", "nova-postgres-etcd")]
    assert selectors[0] != selectors[1]


def test_postgres_resources_match_the_spec_and_every_container_has_requests_and_memory_limit(
        helm_major: int) -> None:
    o = objs(helm_major, (str(PRODUCTION),))
    pg = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]
    assert pg["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                               "limits": {"cpu": "1000m", "memory": "1Gi"}}
    for ref, spec in pod_specs(o):
        for c in spec.get("initContainers", []) + spec["containers"]:
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{ref} {c['name']}: requests"
            assert "memory" in res.get("limits", {}), f"{ref} {c['name']}: memory limit"


def test_every_container_runs_restricted_non_root_with_a_read_only_root(helm_major: int) -> None:
    o = objs(helm_major, (str(PRODUCTION),))
    for ref, spec in pod_specs(o):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0, ref
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, ref
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            where = f"{ref} {c['name']}"
            assert sc["runAsNonRoot"] is True and sc.get("runAsUser", psc["runAsUser"]) > 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_every_path_patroni_and_postgres_write_is_a_volume(helm_major: int) -> None:
    o = objs(helm_major)
    cfg = patroni_cfg(o)
    container = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    writable = [p for p, m in mounts.items() if not m.get("readOnly")]
    env = {e["name"]: e.get("value") for e in container["env"]}
    paths = [cfg["postgresql"]["data_dir"], cfg["postgresql"]["pgpass"],
             cfg["postgresql"]["parameters"]["unix_socket_directories"] + "/.s.PGSQL.5432", env["HOME"] + "/x"]
    for path in paths:
        assert any(path.startswith(w.rstrip("/") + "/") for w in writable), f"{path} is on the read-only root"
    assert mounts["/etc/patroni"]["readOnly"] is True


def test_patroni_timing_meets_loop_wait_plus_twice_retry_timeout_within_ttl(helm_major: int) -> None:
    for values in ((), (str(PRODUCTION),)):
        dcs = patroni_cfg(objs(helm_major, values))["bootstrap"]["dcs"]
        assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
        assert dcs["ttl"] + dcs["loop_wait"] < 30, "a hard kill must fail over within 30 s"
    err = render_error("patroni.ttl=15", "patroni.loopWait=5", "patroni.retryTimeout=6")
    assert "patroni.loopWait + 2 x patroni.retryTimeout <= patroni.ttl" in err


def test_production_profile_is_synchronous_with_rewind_hard_anti_affinity_and_20gi(helm_major: int) -> None:
    o = objs(helm_major, (str(PRODUCTION),))
    dcs = patroni_cfg(o)["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert {"data-checksums"} <= {i for i in patroni_cfg(o)["bootstrap"]["initdb"] if isinstance(i, str)}
    pg = one(o, "StatefulSet", "nova-postgres")
    affinity = pg["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == pg["spec"]["selector"]["matchLabels"]
    assert pg["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    default = one(objs(helm_major), "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["affinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in default["podAntiAffinity"]


def test_probes_use_the_patroni_rest_api_and_prestop_hands_over_leadership(helm_major: int) -> None:
    o = objs(helm_major)
    c = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"postgresql": 5432, "patroni": 8008}
    assert c["readinessProbe"]["exec"] == {"command": ["/bin/sh", "/etc/patroni/readiness.sh"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/liveness", "port": "patroni"}
    assert c["startupProbe"]["httpGet"] == {"path": "/liveness", "port": "patroni"}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "/etc/patroni/pre-stop.sh"]
    assert c["command"] == ["/bin/sh", "/etc/patroni/start.sh"]


def test_isolation_defaults_give_each_service_its_own_login_database_and_schema(helm_major: int) -> None:
    o = objs(helm_major)
    plan = json.loads(one(o, "ConfigMap", "nova-postgres-bootstrap")["data"]["plan.json"])
    assert plan["databases"] == {"nova_core": {"schemas": ["users", "auth", "streaming"]},
                                 "nova_messaging": {"schemas": ["messaging"]},
                                 "nova_search": {"schemas": ["search"]}}
    assert {k: (v["database"], v["schema"]) for k, v in plan["logins"].items()} == {
        "user_service": ("nova_core", "users"), "auth_service": ("nova_core", "auth"),
        "streaming_api": ("nova_core", "streaming"), "messaging_service": ("nova_messaging", "messaging"),
        "search_service": ("nova_search", "search")}
    job = bootstrap_job(o)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PGHOST"]["value"] == "nova-postgres-primary.nova-database.svc.cluster.local"
    for login, spec in plan["logins"].items():
        assert env[spec["passwordEnv"]]["valueFrom"]["secretKeyRef"] == {
            "name": "nova-postgres-credentials", "key": f"{login}-password"}


def test_a_login_pointing_at_an_unknown_database_fails_with_the_key_to_fix() -> None:
    err = render_error("isolation.logins.x_service.database=nope", "isolation.logins.x_service.schema=s")
    assert "isolation.logins.x_service.database" in err and "isolation.databases" in err
    err = render_error("isolation.logins.x_service.database=nova_core", "isolation.logins.x_service.schema=s")
    assert "isolation.logins.x_service.schema" in err


def test_generated_secret_holds_every_password_key(helm_major: int) -> None:
    o = objs(helm_major)
    secret = one(o, "Secret", "nova-postgres-credentials")
    keys = set(secret["data"])
    assert keys == {"superuser-password", "replication-password", "rest-password", "user_service-password",
                    "auth_service-password", "streaming_api-password", "messaging_service-password",
                    "search_service-password"}
    assert all(len(base64.b64decode(v)) == 32 for v in secret["data"].values())
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pg = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in pg["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs["PATRONI_SUPERUSER_PASSWORD"] == {"name": "nova-postgres-credentials", "key": "superuser-password"}
    assert refs["PATRONI_REPLICATION_PASSWORD"]["key"] == "replication-password"
    assert refs["PATRONI_RESTAPI_PASSWORD"]["key"] == "rest-password"
    rendered_config = one(o, "ConfigMap", "nova-postgres-patroni")["data"]["patroni.yml"]
    assert not [k for k, v in secret["data"].items() if base64.b64decode(v).decode() in rendered_config]


def test_existing_secret_is_evaluated_with_tpl_and_no_secret_is_rendered(helm_major: int, tmp_path: Path) -> None:
    values = tmp_path / "existing.yaml"
    values.write_text('auth:\n  existingSecret: "{{ .Release.Name }}-db-credentials"\n')
    o = objs(helm_major, (str(values),))
    assert not [x for x in o if x.kind == "Secret"]
    names = set()
    for _, spec in pod_specs(o):
        for c in spec["containers"]:
            names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                      if "secretKeyRef" in e.get("valueFrom", {})}
    assert names == {"nova-db-credentials"}


def test_overrides_place_names_namespace_and_cluster_domain(helm_major: int) -> None:
    o = objs(helm_major, set_values=("fullnameOverride=db", "namespaceOverride=other", "clusterDomain=k8s.example"))
    assert {x.namespace for x in o} == {"other"}
    assert {"db-primary", "db-replicas"} <= {x.name for x in o if x.kind == "Service"}
    assert "db-etcd-0.db-etcd-headless.other.svc.k8s.example:2379" in patroni_cfg(o, "db")["etcd3"]["hosts"]


def test_external_etcd_replaces_the_members_and_is_required_without_them(helm_major: int) -> None:
    o = objs(helm_major, set_values=("etcd.enabled=false", "etcd.externalHosts={a:2379,b:2379}"))
    assert not [x for x in o if x.name.startswith("nova-postgres-etcd")]
    assert patroni_cfg(o)["etcd3"]["hosts"] == "a:2379,b:2379"
    assert "etcd.externalHosts" in render_error("etcd.enabled=false")


def test_wal_archiving_values_reach_patroni_for_pgbackrest(helm_major: int) -> None:
    o = objs(helm_major, set_values=(
        "walArchive.enabled=true", "walArchive.archiveCommand=pgbackrest --stanza=nova archive-push %p",
        "walArchive.restoreCommand=pgbackrest --stanza=nova archive-get %f %p",
        "walArchive.createReplicaMethods={pgbackrest}", "walArchive.configSecret=pgbackrest-conf"))
    cfg = patroni_cfg(o)
    params = cfg["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert params["archive_mode"] == "on" and params["archive_command"].startswith("pgbackrest")
    assert cfg["postgresql"]["recovery_conf"]["restore_command"].startswith("pgbackrest")
    assert cfg["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]
    c = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]
    assert {"mountPath": "/etc/pgbackrest", "name": "pgbackrest", "readOnly": True} in c["volumeMounts"]
    assert "walArchive.archiveCommand" in render_error("walArchive.enabled=true")


def test_metrics_exporter_and_servicemonitor_only_when_asked_and_the_crd_exists(helm_major: int) -> None:
    assert not [x for x in objs(helm_major) if x.kind == "ServiceMonitor" or x.name.endswith("-metrics")]
    o = objs(helm_major, set_values=("metrics.enabled=true",))
    assert not [x for x in o if x.kind == "ServiceMonitor"]
    c = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"]
    assert [x["name"] for x in c] == ["postgres", "metrics"]
    plan = json.loads(one(o, "ConfigMap", "nova-postgres-bootstrap")["data"]["plan.json"])
    assert plan["logins"]["nova_metrics"]["memberOf"] == ["pg_monitor"]
    o = objs(helm_major, set_values=("metrics.enabled=true",), api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))
    sm = one(o, "ServiceMonitor", "nova-postgres")
    svc = one(o, "Service", "nova-postgres-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in sm["spec"]["endpoints"]] == [p["name"] for p in svc["spec"]["ports"]]


def test_even_etcd_member_count_is_rejected() -> None:
    assert "etcd.replicas must be odd" in render_error("etcd.replicas=2")


@pytest.mark.parametrize("script", ["pre-stop.sh", "start.sh", "readiness.sh"])
def test_container_scripts_pass_shellcheck(script: str) -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck missing: run `make setup`")
    text = one(objs(), "ConfigMap", "nova-postgres-patroni")["data"][script]
    proc = subprocess.run(["shellcheck", "-s", "sh", "-"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_network_policies_let_only_postgres_reach_etcd_and_cover_every_pod(helm_major: int) -> None:
    o = objs(helm_major)
    policies = [x.obj for x in o if x.kind == "NetworkPolicy"]
    for ref, spec in pod_specs(o):
        workload = next(x.obj for x in o if x.ref == ref)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(p["spec"]["podSelector"]["matchLabels"].items() <= labels.items() for p in policies), ref
    etcd = one(o, "NetworkPolicy", "nova-postgres-etcd")
    pg_selector = one(o, "StatefulSet", "nova-postgres")["spec"]["selector"]["matchLabels"]
    client_rules = [r for r in etcd["spec"]["ingress"] if {"port": "client"} in r["ports"]]
    peers = [p["podSelector"]["matchLabels"] for r in client_rules for p in r["from"]]
    assert pg_selector in peers
    assert all("namespaceSelector" not in p for r in etcd["spec"]["ingress"] for p in r["from"])
    pg = one(o, "NetworkPolicy", "nova-postgres")
    rest_rules = [r for r in pg["spec"]["ingress"] if {"port": "patroni"} in r["ports"]]
    assert all("namespaceSelector" not in p for r in rest_rules for p in r["from"]), \
        "the Patroni REST API (switchover) must not be open to other namespaces"
    job = one(o, "NetworkPolicy", "nova-postgres-bootstrap")
    assert job["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in job["spec"]


def test_bootstrap_job_runs_with_the_release_not_as_a_hook_with_bounded_retries(helm_major: int) -> None:
    o = objs(helm_major)
    job = bootstrap_job(o)
    assert not [k for k in (job["metadata"].get("annotations") or {}) if k.startswith(("helm.sh/hook", "argocd"))], \
        "a hook waits for every resource to be Ready, and a service's readiness may need its login: deadlock"
    spec = job["spec"]
    assert spec["backoffLimit"] == 3 and spec["ttlSecondsAfterFinished"] == 86400
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["NOVA_BOOTSTRAP_WAIT"] == "600", "the Job itself waits for a writable primary"
    assert spec["activeDeadlineSeconds"] >= (spec["backoffLimit"] + 1) * 600, "the deadline cuts the retries short"
    config = one(o, "ConfigMap", "nova-postgres-bootstrap")
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {config["metadata"]["name"]}
    kept = bootstrap_job(objs(helm_major, set_values=("bootstrap.ttlSecondsAfterFinished=null",)))
    assert "ttlSecondsAfterFinished" not in kept["spec"]
    assert not [x for x in objs(helm_major, set_values=("bootstrap.enabled=false",))
                if x.obj["metadata"]["labels"].get("app.kubernetes.io/component") == "bootstrap"]


def test_bootstrap_job_name_hashes_its_inputs_so_only_a_change_makes_a_new_job(helm_major: int) -> None:
    name = bootstrap_job(objs(helm_major))["metadata"]["name"]
    assert len(name) <= 63 and name.startswith("nova-postgres-bootstrap-") and len(name.rsplit("-", 1)[1]) == 10
    assert bootstrap_job(objs(7 - helm_major))["metadata"]["name"] == name, "helm 3 and 4 must agree"
    unrelated = ("replicas=5", "resources.requests.cpu=500m", "etcd.replicas=5", "patroni.ttl=30")
    assert bootstrap_job(objs(helm_major, set_values=unrelated))["metadata"]["name"] == name
    changes = {
        "a login added": ("isolation.logins.billing_service.database=nova_core",
                          "isolation.logins.billing_service.schema=users"),
        "a schema added": ("isolation.databases.nova_core.schemas={users,auth,streaming,extra}",),
        "another Secret": ("auth.existingSecret=db-credentials",),
        "the metrics login": ("metrics.enabled=true",),
        "another image": ("image.tag=3.0-p2",),
    }
    names = {what: bootstrap_job(objs(helm_major, set_values=sv))["metadata"]["name"] for what, sv in changes.items()}
    assert name not in names.values(), names
    assert len(set(names.values())) == len(names), names
    long = bootstrap_job(objs(helm_major, set_values=("fullnameOverride=" + "p" * 63,)))["metadata"]["name"]
    assert len(long) <= 63 and long.endswith("-" + long.rsplit("-", 1)[1]) and len(long.rsplit("-", 1)[1]) == 10


def test_bootstrap_job_name_follows_the_script_and_not_the_chart_version(tmp_path: Path) -> None:
    copy = tmp_path / "nova-postgres"
    shutil.copytree(CHART, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CHART.parent / "nova-common", tmp_path / "nova-common")  # charts/nova-common -> ../../nova-common

    def job_name() -> str:
        return bootstrap_job(helm.render(copy, namespace=NS))["metadata"]["name"]

    before = job_name()
    chart_yaml = copy / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("\nversion: ", "\nversion: 9.9.9-was-", 1))
    assert job_name() == before, "a chart version bump alone must not re-run the bootstrap"
    script = copy / "files" / "bootstrap.py"
    script.write_text(script.read_text() + "\n# changed\n")
    assert job_name() != before, "a changed bootstrap script must start a new Job"


def _np_rules(objects: list[KubeObject]) -> list[tuple[str, dict[str, Any]]]:
    return [(o.name, rule) for o in objects if o.kind == "NetworkPolicy" for rule in o.obj["spec"].get("ingress") or []]


@pytest.mark.parametrize("values", [(), (str(PRODUCTION),)], ids=["default", "production"])
def test_every_network_policy_ingress_rule_names_its_ports(helm_major: int, values: tuple[str, ...]) -> None:
    o = objs(helm_major, values, ("metrics.enabled=true",))
    rules = _np_rules(o)
    assert len(rules) >= 5
    for name, rule in rules:
        assert rule.get("ports"), f"NetworkPolicy/{name}: an ingress rule without ports opens every port: {rule}"
        assert rule.get("from"), f"NetworkPolicy/{name}: an ingress rule without from admits every peer: {rule}"


def test_etcd_and_the_patroni_rest_api_admit_only_their_peers(helm_major: int) -> None:
    o = objs(helm_major, set_values=("metrics.enabled=true",))
    selectors = {c: one(o, "StatefulSet", n)["spec"]["selector"]["matchLabels"]
                 for c, n in (("postgres", "nova-postgres"), ("etcd", "nova-postgres-etcd"))}
    etcd = one(o, "NetworkPolicy", "nova-postgres-etcd")
    assert etcd["spec"]["podSelector"]["matchLabels"] == selectors["etcd"]
    defrag = {**selectors["etcd"], "app.kubernetes.io/component": "etcd-defrag"}
    for rule in etcd["spec"]["ingress"]:
        if rule["ports"] == [{"port": "metrics"}]:
            assert rule["from"] == [{"namespaceSelector": {}}], "etcd's metrics port: networkPolicy.metricsFrom only"
            continue
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, f"etcd admits more than pods of this release: {peer}"
            assert peer["podSelector"]["matchLabels"] in [*selectors.values(), defrag], peer
            if peer["podSelector"]["matchLabels"] in (selectors["postgres"], defrag):
                assert rule["ports"] == [{"port": "client"}], "PostgreSQL and defrag pods need etcd's client port only"
    pg = one(o, "NetworkPolicy", "nova-postgres")
    # The config-apply Job (PATCH /config, POST /restart) is the one other peer of the REST API, on that port only.
    config_apply = {**selectors["postgres"], "app.kubernetes.io/component": "config-apply"}
    for rule in pg["spec"]["ingress"]:
        if rule["ports"] == [{"port": "metrics"}, {"port": "patroni"}]:
            # the scrapers (networkPolicy.metricsFrom, metrics on): Patroni's /metrics is on its REST port, whose
            # unsafe endpoints need the rest-password
            assert rule["from"] == [{"namespaceSelector": {}}], rule
            continue
        if {"port": "patroni"} in rule["ports"]:
            assert rule["from"] in ([{"podSelector": {"matchLabels": selectors["postgres"]}}],
                                    [{"podSelector": {"matchLabels": config_apply}}]), \
                f"the Patroni REST API (switchover, restart) is open beyond the PostgreSQL pods: {rule}"
            if rule["from"][0]["podSelector"]["matchLabels"] == config_apply:
                assert rule["ports"] == [{"port": "patroni"}], rule
    job_pod = bootstrap_job(o)["spec"]["template"]["metadata"]["labels"]
    admitted = {p["port"] for r in pg["spec"]["ingress"] for peer in r["from"]
                if set(peer) == {"podSelector"} and peer["podSelector"]["matchLabels"].items() <= job_pod.items()
                for p in r["ports"]}
    assert admitted == {"postgresql"}, "the bootstrap Job needs SQL only"


# ------------------------------------------------------------------------------------- routing and volumes (11.2/3)
def _pg_container(o: list[KubeObject]) -> dict[str, Any]:
    return one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"][0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_start_script_and_readiness_share_the_role_file_on_a_pod_lifetime_volume() -> None:
    o = objs()
    c = _pg_container(o)
    env = _env(c)
    role_file = env["NOVA_ROLE_FILE"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in mounts if role_file.startswith(m + "/"))
    # emptyDir: kept across container restarts (where the stale label comes from), fresh with a new pod.
    assert "emptyDir" in volumes[mounts[mount]]
    assert env["NOVA_REPLICA_LAG"] == "16MB"
    assert env["NOVA_DATA_DIR"] == patroni_cfg(o)["postgresql"]["data_dir"]
    data = one(o, "ConfigMap", "nova-postgres-patroni")["data"]
    assert {"start.sh", "readiness.sh", "role_label.py"} <= set(data)
    annotations = one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/scripts" in annotations


def test_a_changed_start_or_readiness_script_rolls_the_pods(tmp_path: Path) -> None:
    copy = tmp_path / "nova-postgres"
    shutil.copytree(CHART, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CHART.parent / "nova-common", tmp_path / "nova-common")
    before = one(helm.render(copy, namespace=NS), "StatefulSet", "nova-postgres")
    (copy / "files" / "readiness.sh").write_text((copy / "files" / "readiness.sh").read_text() + "# changed\n")
    after = one(helm.render(copy, namespace=NS), "StatefulSet", "nova-postgres")
    key = "checksum/scripts"
    assert before["spec"]["template"]["metadata"]["annotations"][key] != \
        after["spec"]["template"]["metadata"]["annotations"][key]


@pytest.mark.parametrize(("size", "quota"), [("256Mi", 32 * 2**20), ("1Gi", 416 * 2**20), ("100Gi", 8 * 2**30)])
def test_etcd_quota_is_computed_from_the_volume_size(size: str, quota: int) -> None:
    o = objs(set_values=(f"etcd.persistence.size={size}",))
    args = one(o, "StatefulSet", "nova-postgres-etcd")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--quota-backend-bytes={quota}" in args
    assert "--max-wals=2" in args and "--snapshot-count=10000" in args
    assert "--auto-compaction-mode=periodic" in args and "--auto-compaction-retention=1" in args


def test_an_etcd_quota_that_does_not_fit_the_volume_fails_naming_both_keys() -> None:
    err = render_error("etcd.quotaBackendBytes=2147483648")
    assert "etcd.quotaBackendBytes=2147483648 does not fit etcd.persistence.size=1Gi" in err
    assert "at most 436207616 bytes" in err
    assert "etcd.persistence.size=200Mi is too small" in render_error("etcd.persistence.size=200Mi")
    o = objs(set_values=("etcd.quotaBackendBytes=104857600",))
    args = one(o, "StatefulSet", "nova-postgres-etcd")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--quota-backend-bytes=104857600" in args


def test_etcd_liveness_and_startup_ignore_the_nospace_alarm_and_answer_from_the_member() -> None:
    c = one(objs(), "StatefulSet", "nova-postgres-etcd")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "startupProbe"):
        path = c[probe]["httpGet"]["path"]
        assert path.startswith("/health?") and "exclude=NOSPACE" in path and "serializable=true" in path
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"


# --------------------------------------------------------------------------------------------------- zones (11.4)
def _spread(o: list[KubeObject], name: str) -> list[dict[str, Any]]:
    return one(o, "StatefulSet", name)["spec"]["template"]["spec"].get("topologySpreadConstraints") or []


def test_postgres_and_etcd_prefer_zones_by_default_and_require_one_pod_per_zone_in_production() -> None:
    for profile, when, min_domains in (((), "ScheduleAnyway", None), ((str(PRODUCTION),), "DoNotSchedule", 3)):
        o = objs(values=profile)
        for name in ("nova-postgres", "nova-postgres-etcd"):
            sts = one(o, "StatefulSet", name)
            [c] = _spread(o, name)
            assert c["topologyKey"] == "topology.kubernetes.io/zone" and c["maxSkew"] == 1
            assert c["whenUnsatisfiable"] == when and c.get("minDomains") == min_domains
            assert c["labelSelector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
            # 3 pods, maxSkew 1, DoNotSchedule, minDomains 3: a second pod in one zone is never allowed.
            if when == "DoNotSchedule":
                assert sts["spec"]["replicas"] == c["minDomains"] == 3


def test_zone_spread_is_configurable_and_a_custom_list_replaces_it() -> None:
    o = objs(set_values=("etcd.topologySpread.enabled=false", "topologySpread.topologyKey=example.com/rack"))
    assert _spread(o, "nova-postgres-etcd") == []
    assert _spread(o, "nova-postgres")[0]["topologyKey"] == "example.com/rack"
    custom = objs(set_values=("etcd.topologySpreadConstraints[0].maxSkew=2",
                              "etcd.topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
                              "etcd.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
                              "etcd.topologySpreadConstraints[0].labelSelector.matchLabels.a=b"))
    assert [c["maxSkew"] for c in _spread(custom, "nova-postgres-etcd")] == [2]
    err = render_error("etcd.topologySpread.minDomains=3")
    assert "etcd.topologySpread.minDomains needs etcd.topologySpread.whenUnsatisfiable=DoNotSchedule" in err


def test_etcd_takes_node_selector_and_tolerations() -> None:
    o = objs(set_values=("etcd.nodeSelector.pool=etcd", "etcd.tolerations[0].key=dedicated",
                         "etcd.tolerations[0].operator=Exists", "etcd.tolerations[0].effect=NoSchedule"))
    spec = one(o, "StatefulSet", "nova-postgres-etcd")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"pool": "etcd"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]


def test_etcd_defrag_cronjob_defragments_every_member_in_turn_as_the_etcd_user_and_is_admitted_to_client_only(
        ) -> None:
    o = objs()
    cron = one(o, "CronJob", "nova-postgres-etcd-defrag")
    assert cron["spec"]["schedule"] == "17 3 * * 0" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    etcd = one(o, "StatefulSet", "nova-postgres-etcd")["spec"]["template"]["spec"]
    [c] = pod["spec"]["containers"]
    assert c["image"] == etcd["containers"][0]["image"] and c["command"] == ["/usr/local/bin/etcdctl"]
    hosts = patroni_cfg(o)["etcd3"]["hosts"].split(",")
    assert c["args"] == [f"--endpoints={','.join('http://' + h for h in hosts)}", "--command-timeout=60s", "defrag"]
    assert c["securityContext"] == etcd["containers"][0]["securityContext"]
    assert pod["spec"]["securityContext"] == etcd["securityContext"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    labels = pod["metadata"]["labels"]
    deny = one(o, "NetworkPolicy", "nova-postgres-etcd-defrag")
    assert deny["spec"]["podSelector"]["matchLabels"].items() <= labels.items() and "ingress" not in deny["spec"]
    admitted = [r["ports"] for r in one(o, "NetworkPolicy", "nova-postgres-etcd")["spec"]["ingress"]
                for p in r["from"] if p["podSelector"]["matchLabels"].items() <= labels.items()]
    assert admitted == [[{"port": "client"}]]
    off = objs(set_values=("etcd.defrag.enabled=false",))
    assert not [x for x in off if x.kind == "CronJob" or x.name == "nova-postgres-etcd-defrag"]


def _role_label_module(tmp_path: Path) -> Any:
    """files/role_label.py as the rendered ConfigMap carries it, imported from a temp file."""
    import importlib.util

    path = tmp_path / "role_label.py"
    path.write_text(one(objs(), "ConfigMap", "nova-postgres-patroni")["data"]["role_label.py"])
    spec = importlib.util.spec_from_file_location("role_label_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_role_file_says_unknown_while_a_label_patch_is_in_flight_or_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _role_label_module(tmp_path)
    role_file = tmp_path / "nova-role"
    role_file.write_text("primary\n")
    monkeypatch.setenv("NOVA_ROLE_FILE", str(role_file))
    monkeypatch.setattr(mod.time, "sleep", lambda _s: None)
    seen: list[str] = []

    def patch_ok(value: str) -> None:
        seen.append(role_file.read_text().strip())  # what readiness would read during the patch
    monkeypatch.setattr(mod, "patch_label", patch_ok)
    assert mod.main(["on_boot", "-"]) == 0
    assert seen == ["unknown"] and role_file.read_text() == "stopped\n"
    assert mod.main(["on_role_change", "primary"]) == 0 and role_file.read_text() == "primary\n"

    def patch_fails(value: str) -> None:
        raise OSError("connection refused")
    monkeypatch.setattr(mod, "patch_label", patch_fails)
    assert mod.main(["on_role_change", "replica"]) == 1
    assert role_file.read_text() == "unknown\n", "after a failed patch the label is unknown, so never ready"


@pytest.mark.parametrize(("role", "answers", "ready"), [
    ("primary", {"/primary": 200}, True),
    ("primary", {"/replica": 200}, False),          # a replica still labelled primary (the stale label)
    ("replica", {"/replica": 200}, True),
    ("replica", {"/primary": 200}, False),          # a promoted leader still labelled replica
    ("stopped", {"/primary": 200, "/replica": 200}, False),
    ("unknown", {"/primary": 200, "/replica": 200}, False),
    (None, {"/primary": 200, "/replica": 200}, False),   # no role file yet (a new pod)
])
def test_readiness_script_is_ready_only_when_patroni_confirms_the_labelled_role(
        tmp_path: Path, role: str | None, answers: dict[str, int], ready: bool) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if not shutil.which("curl"):
        pytest.skip("curl missing")
    asked: list[str] = []

    class Patroni(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(answers.get(self.path.split("?")[0], 503))
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Patroni)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()  # a quick shutdown()
    try:
        script = tmp_path / "readiness.sh"
        script.write_text(one(objs(), "ConfigMap", "nova-postgres-patroni")["data"]["readiness.sh"])
        role_file = tmp_path / "nova-role"
        if role is not None:
            role_file.write_text(role + "\n")
        env = {"PATH": "/usr/bin:/bin", "NOVA_ROLE_FILE": str(role_file), "NOVA_REPLICA_LAG": "16MB",
               "NOVA_REST_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        done = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=10,
                              check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is ready, (done.stdout, done.stderr)
    if role == "replica":
        assert asked == ["/replica?lag=16MB"]
    elif role != "primary":
        assert asked == [], "a pod without a role label claim must not even ask Patroni"


def test_pre_promote_labels_the_pod_promoting_and_never_blocks_a_failover(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Patroni's pre_promote hook takes the pod out of -replicas before PostgreSQL accepts writes; with the API
    unreachable it still exits 0 (a non-zero exit would make Patroni give up the leader key) and leaves the role
    file `unknown`, so readiness keeps the pod out of both Services."""
    role_label = _role_label_module(tmp_path)
    patroni = next(o for o in render(CHART) if o.kind == "ConfigMap" and o.name.endswith("-patroni"))
    hook = yaml.safe_load(patroni["data"]["patroni.yml"])["postgresql"]["pre_promote"]
    assert hook.split()[-3:] == ["/etc/patroni/role_label.py", "pre_promote", "promoting"]
    assert role_label.label_value("pre_promote", "promoting") == "promoting"
    role_file = tmp_path / "nova-role"
    role_file.write_text("replica")
    monkeypatch.setenv("NOVA_ROLE_FILE", str(role_file))
    monkeypatch.setenv("POD_NAME", "nova-postgres-1")
    monkeypatch.setenv("POD_NAMESPACE", "default")
    monkeypatch.setenv("NOVA_K8S_API_URL", "http://127.0.0.1:9")  # nothing listens: connection refused
    monkeypatch.setenv("NOVA_K8S_TOKEN_FILE", str(tmp_path / "token"))
    (tmp_path / "token").write_text("t")
    monkeypatch.setattr(role_label.time, "sleep", lambda _s: None)
    assert role_label.main(["pre_promote", "promoting"]) == 0
    assert role_file.read_text().strip() == "unknown"
    assert role_label.main(["on_role_change", "master", "nova"]) == 1  # the other callbacks do report it
