"""charts/nova-redis rendered with helm 4 and helm 3: assertions on the objects."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova-redis"
CI = CHART / "ci"
NS = "nova-redis"


def objects(major: int, values: tuple[str, ...] = (), set_values: tuple[str, ...] = (), **kw: Any) -> list[KubeObject]:
    return render(CHART, [str(CI / v) for v in values], list(set_values), major=major, namespace=NS, **kw)


def one(objs: list[KubeObject], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o.obj for o in objs if o.kind == kind and (name is None or o.name == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o.name for o in objs if o.kind == kind]}"
    return found[0]


def workloads(objs: list[KubeObject]) -> list[dict[str, Any]]:
    return [o.obj for o in objs if o.kind in ("StatefulSet", "Deployment")]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers", [])) + list(pod_spec["containers"])


def container(sts: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---- names, topology, contract with the umbrella ---------------------------------------------------------


def test_names_ports_and_namespace_follow_the_architecture_contract(helm_major: int) -> None:
    objs = objects(helm_major)
    assert one(objs, "StatefulSet")["metadata"]["name"] == "nova-redis"
    sentinel = one(objs, "Service", "nova-redis-sentinel")
    assert sentinel["spec"]["type"] == "ClusterIP"
    assert sentinel["spec"]["ports"] == [{"name": "sentinel", "port": 26379, "targetPort": "sentinel"}]
    master = one(objs, "Service", "nova-redis-master")
    assert master["spec"]["ports"] == [{"name": "redis", "port": 6379, "targetPort": "redis"}]
    headless = one(objs, "Service", "nova-redis-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert one(objs, "StatefulSet")["spec"]["serviceName"] == "nova-redis-headless"
    assert all(o.namespace == NS for o in objs)


def test_namespace_override_and_fullname_override_apply_to_every_object(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("namespaceOverride=elsewhere", "fullnameOverride=cache"))
    assert {o.namespace for o in objs} == {"elsewhere"}
    names = {o.name for o in objs}
    assert {"cache", "cache-headless", "cache-sentinel", "cache-master"} <= names
    nodes = env_of(container(one(objs, "StatefulSet"), "redis"))["NOVA_REDIS_NODES"].split()
    assert nodes[0] == "cache-0.cache-headless.elsewhere.svc.cluster.local"


def test_three_pods_with_sentinel_quorum_two_and_safe_timings(helm_major: int) -> None:
    objs = objects(helm_major)
    sts = one(objs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["redis", "sentinel"]
    env = env_of(container(sts, "sentinel"))
    assert env["SENTINEL_QUORUM"] == "2" and env["SENTINEL_MASTER_SET"] == "nova"
    cm = one(objs, "ConfigMap", "nova-redis-config")["data"]
    master_conf = {tuple(line.split()[:3]): line.split()[3] for line in cm["sentinel-master.conf"].splitlines() if line}
    assert master_conf[("sentinel", "down-after-milliseconds", "nova")] == "5000"
    assert master_conf[("sentinel", "failover-timeout", "nova")] == "10000"
    assert master_conf[("sentinel", "parallel-syncs", "nova")] == "1"
    redis_conf = dict(line.split(None, 1) for line in cm["redis.conf"].splitlines() if line and not line.startswith("#"))
    assert redis_conf["min-replicas-to-write"] == "1"
    assert redis_conf["min-replicas-max-lag"] == "2"  # <= down-after - 3 s: docs/redis.md, faults
    assert redis_conf["appendonly"] == "yes" and redis_conf["save"].strip() != '""'
    assert "sentinel resolve-hostnames yes" in cm["sentinel.conf"]
    assert "sentinel announce-hostnames yes" in cm["sentinel.conf"]


def test_cluster_domain_and_master_set_are_configurable(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("clusterDomain=corp.local", "sentinel.masterSet=cache"))
    env = env_of(container(one(objs, "StatefulSet"), "redis"))
    assert env["NOVA_REDIS_NODES"].split()[2] == "nova-redis-2.nova-redis-headless.nova-redis.svc.corp.local"
    assert env["SENTINEL_MASTER_SET"] == "cache"
    cfg = one(objs, "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]
    assert "SENTINEL get-master-addr-by-name cache" in cfg


# ---- security, resources, probes -------------------------------------------------------------------------


def test_every_container_runs_restricted_with_a_read_only_root(helm_major: int) -> None:
    objs = objects(helm_major, ("production-values.yaml",))
    assert len(workloads(objs)) == 2
    for w in workloads(objs):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in containers(pod):
            sc = c["securityContext"]
            where = f"{w['kind']}/{w['metadata']['name']} container {c['name']}"
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
    sts = one(objs, "StatefulSet")
    assert sts["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 999
    sa = one(objs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert not [o for o in objs if o.kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_resources_follow_the_spec_and_every_container_has_probes(helm_major: int) -> None:
    objs = objects(helm_major, ("production-values.yaml",))
    sts = one(objs, "StatefulSet")
    assert container(sts, "redis")["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert container(sts, "sentinel")["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    for w in workloads(objs):
        for c in containers(w["spec"]["template"]["spec"]):
            where = f"{w['metadata']['name']}/{c['name']}"
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], where
            assert c["resources"]["limits"]["memory"], where
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{where} has no {probe}"


def test_redis_and_sentinel_are_probed_separately_with_meaningful_checks(helm_major: int) -> None:
    sts = one(objects(helm_major), "StatefulSet")
    redis_c, sentinel_c = container(sts, "redis"), container(sts, "sentinel")
    assert redis_c["startupProbe"]["exec"]["command"][-1] == "redis-startup"
    assert redis_c["readinessProbe"]["exec"]["command"][-1] == "redis-readiness"
    assert redis_c["livenessProbe"]["exec"]["command"][-1] == "redis-liveness"
    assert sentinel_c["readinessProbe"]["exec"]["command"][-1] == "sentinel-readiness"
    assert sentinel_c["livenessProbe"]["exec"]["command"][-1] == "sentinel-liveness"
    assert redis_c["lifecycle"]["preStop"]["exec"]["command"][-1].endswith("prestop-redis.sh")
    # The kubelet runs both hooks at once and stops each container when its own hook returns: the
    # Sentinel of the master's pod waits for the hand-over, with the same bound as the redis hook.
    assert sentinel_c["lifecycle"]["preStop"]["exec"]["command"][-1].endswith("prestop-sentinel.sh")
    grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    for c in (redis_c, sentinel_c):
        assert env_of(c)["PRESTOP_TIMEOUT"] == str(grace - 5), c["name"]


def test_writable_paths_are_empty_dirs_or_the_data_volume(helm_major: int) -> None:
    objs = objects(helm_major, ("local-values.yaml",))
    pod = one(objs, "StatefulSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"][:2]:
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/opt/nova-redis"].get("readOnly") is True
        assert "configMap" in volumes[mounts["/opt/nova-redis"]["name"]]
        for path in ("/data", "/run/nova-redis", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]["name"]], f"{c['name']}: {path}"
    assert volumes["run"]["emptyDir"]["medium"] == "Memory"  # holds the auth include


# ---- availability ------------------------------------------------------------------------------------------


def test_pdbs_allow_one_pod_down_and_select_their_pods(helm_major: int) -> None:
    objs = objects(helm_major)
    pdbs = {p["metadata"]["name"]: p for p in (o.obj for o in objs if o.kind == "PodDisruptionBudget")}
    assert set(pdbs) == {"nova-redis", "nova-redis-master"}
    for w in workloads(objs):
        pdb = pdbs[w["metadata"]["name"]]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert selects(pdb["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
        others = [x for x in workloads(objs) if x is not w]
        assert not any(selects(pdb["spec"]["selector"]["matchLabels"], x["spec"]["template"]["metadata"]["labels"])
                       for x in others)


def test_services_select_the_right_pods(helm_major: int) -> None:
    objs = objects(helm_major)
    redis_labels = one(objs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    proxy_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for name in ("nova-redis-headless", "nova-redis-sentinel"):
        sel = one(objs, "Service", name)["spec"]["selector"]
        assert selects(sel, redis_labels) and not selects(sel, proxy_labels), name
    sel = one(objs, "Service", "nova-redis-master")["spec"]["selector"]
    assert selects(sel, proxy_labels) and not selects(sel, redis_labels)
    # Named target ports exist on the selected containers.
    redis_ports = {p["name"] for c in one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    assert {"redis", "sentinel"} <= redis_ports
    proxy_ports = {p["name"] for c in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert "redis" in proxy_ports


@pytest.mark.parametrize(("mode", "key"), [
    ("soft", "preferredDuringSchedulingIgnoredDuringExecution"),
    ("hard", "requiredDuringSchedulingIgnoredDuringExecution"),
])
def test_anti_affinity_modes(helm_major: int, mode: str, key: str) -> None:
    objs = objects(helm_major, set_values=(f"affinity.podAntiAffinity={mode}",))
    for w in workloads(objs):
        anti = w["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert list(anti) == [key]
        term = anti[key][0] if mode == "hard" else anti[key][0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert selects(term["labelSelector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])


def test_production_scenario_has_hard_anti_affinity_and_local_has_soft(helm_major: int) -> None:
    prod = one(objects(helm_major, ("production-values.yaml",)), "StatefulSet")["spec"]["template"]["spec"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in prod["affinity"]["podAntiAffinity"]
    local = one(objects(helm_major, ("local-values.yaml",)), "StatefulSet")["spec"]["template"]["spec"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in local["affinity"]["podAntiAffinity"]
    assert "topologySpreadConstraints" not in local


def test_anti_affinity_none_renders_no_affinity_but_keeps_topology_spread(helm_major: int) -> None:
    pod = one(objects(helm_major, set_values=("affinity.podAntiAffinity=none",)), "StatefulSet")["spec"]["template"]["spec"]
    assert "affinity" not in pod
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["maxSkew"] == 1


def test_production_scenario_keeps_5gi_per_pod(helm_major: int) -> None:
    sts = one(objects(helm_major, ("production-values.yaml",)), "StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}


def test_without_persistence_data_is_an_empty_dir(helm_major: int) -> None:
    sts = one(objects(helm_major, ("local-values.yaml",)), "StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    assert {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}["data"]["emptyDir"]["sizeLimit"] == "1Gi"


def test_storage_class_falls_back_to_global(helm_major: int) -> None:
    sts = one(objects(helm_major, set_values=("global.storageClass=fast",)), "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"


# ---- auth ----------------------------------------------------------------------------------------------------


def _all_argv(objs: list[KubeObject]) -> list[str]:
    argv: list[str] = []
    for w in workloads(objs):
        for c in containers(w["spec"]["template"]["spec"]):
            argv += c.get("command", []) + c.get("args", [])
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                argv += (c.get(probe, {}).get("exec") or {}).get("command", [])
            argv += ((c.get("lifecycle") or {}).get("preStop", {}).get("exec") or {}).get("command", [])
    return argv


def test_generated_secret_feeds_redis_sentinel_and_proxy_without_argv_or_configmap(helm_major: int) -> None:
    objs = objects(helm_major)
    secret = one(objs, "Secret", "nova-redis")
    assert set(secret["data"]) == {"redis-password", "sentinel-password"}
    password = base64.b64decode(secret["data"]["redis-password"]).decode()
    sentinel_password = base64.b64decode(secret["data"]["sentinel-password"]).decode()
    assert len(password) >= 32 and len(sentinel_password) >= 32
    assert sentinel_password != password
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for w in workloads(objs):
        for c in w["spec"]["template"]["spec"]["containers"]:
            env = env_of(c)
            assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "nova-redis", "key": "redis-password"}}, c["name"]
    assert env_of(container(one(objs, "StatefulSet"), "redis"))["REDISCLI_AUTH"]["secretKeyRef"]["key"] == "redis-password"
    # Sentinel's requirepass (sentinel container), the scripts that ask Sentinels (redis container) and
    # HAProxy's Sentinel check read sentinel-password; the exporter talks to Redis only.
    sts, proxy = one(objs, "StatefulSet"), one(objs, "Deployment", "nova-redis-master")
    for c in (container(sts, "sentinel"), container(sts, "redis"), container(proxy, "haproxy")):
        assert env_of(c)["SENTINEL_PASSWORD"] == {"secretKeyRef": {"name": "nova-redis", "key": "sentinel-password"}}, c["name"]
    for secret_value in (password, sentinel_password):
        assert not any(secret_value in a for a in _all_argv(objs))
        for cm in (o.obj for o in objs if o.kind == "ConfigMap"):
            assert not any(secret_value in v for v in cm["data"].values()), cm["metadata"]["name"]
    assert not any(re.search(r"(^|\s)-a(\s|$)|--pass", a) for a in _all_argv(objs))


def test_sentinel_and_haproxy_sentinel_check_use_the_sentinel_password(helm_major: int) -> None:
    objs = objects(helm_major)
    data = one(objs, "ConfigMap", "nova-redis-config")["data"]
    start = data["start-sentinel.sh"]
    assert re.search(r'conf_quote "\$SENTINEL_PASSWORD"\)\n\s+printf .requirepass', start)
    assert "printf 'sentinel sentinel-pass %s\\n' \"$q\"" in start
    assert re.search(r"sentinel auth-pass %s %s.*conf_quote \"\$REDIS_PASSWORD\"", start)
    cfg = one(objs, "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]
    nodes, votes = haproxy_backends(cfg, r"node\d+"), haproxy_backends(cfg, r"node\d+_votes")
    assert len(nodes) == len(votes) == 3
    for body in nodes.values():  # the Redis check logs in to Redis
        assert "${REDIS_PASSWORD}" in body and "SENTINEL_PASSWORD" not in body
    for body in votes.values():  # the Sentinel checks log in to Sentinel
        assert "${SENTINEL_PASSWORD}" in body and "REDIS_PASSWORD" not in body


def test_existing_secret_is_evaluated_with_tpl_and_no_secret_is_generated(helm_major: int, tmp_path: Path) -> None:
    values = tmp_path / "existing.yaml"
    values.write_text(yaml.safe_dump({"auth": {"existingSecret": "{{ .Release.Name }}-redis-credentials"}}))
    objs = render(CHART, [str(values)], major=helm_major, namespace=NS)
    assert not [o for o in objs if o.kind == "Secret"]
    for w in workloads(objs):
        for c in w["spec"]["template"]["spec"]["containers"]:
            assert env_of(c)["REDIS_PASSWORD"]["secretKeyRef"] == {"name": "nova-redis-credentials", "key": "redis-password"}
    # A Secret made for an older chart may lack sentinel-password: the ref is optional and the scripts then
    # use redis-password for Sentinel (common.sh, start-haproxy.sh).
    sts, proxy = one(objs, "StatefulSet"), one(objs, "Deployment", "nova-redis-master")
    for c in (container(sts, "sentinel"), container(sts, "redis"), container(proxy, "haproxy")):
        assert env_of(c)["SENTINEL_PASSWORD"]["secretKeyRef"] == {
            "name": "nova-redis-credentials", "key": "sentinel-password", "optional": True}, c["name"]


def test_auth_disabled_renders_no_secret_and_no_auth_step(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("auth.enabled=false",))
    assert not [o for o in objs if o.kind == "Secret"]
    for w in workloads(objs):
        for c in w["spec"]["template"]["spec"]["containers"]:
            assert not {"REDIS_PASSWORD", "REDISCLI_AUTH", "SENTINEL_PASSWORD"} & set(env_of(c))
    assert "AUTH" not in one(objs, "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]


# ---- write-safe endpoint ------------------------------------------------------------------------------------


def haproxy_backends(cfg: str, name: str) -> dict[str, str]:
    """Backends of a rendered haproxy.cfg whose name matches ``name`` (a regex): name -> body."""
    return dict(re.findall(rf"^backend ({name})\n(.*?)(?=^\S|\Z)", cfg, flags=re.DOTALL | re.MULTILINE))


def test_proxy_selects_the_master_named_by_a_majority_of_the_sentinels_and_fails_closed(helm_major: int) -> None:
    objs = objects(helm_major)
    cfg = one(objs, "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]
    hosts = [f"nova-redis-{i}.nova-redis-headless.nova-redis.svc.cluster.local" for i in range(3)]
    nodes = haproxy_backends(cfg, r"node\d+")
    assert list(nodes) == ["node0", "node1", "node2"]
    for i, body in enumerate(nodes.values()):
        # The node itself says role:master (a replica fails at once) ...
        assert "expect min-recv 0 !string role:slave" in body and "expect string role:master" in body
        # ... and frontend health says a majority of the Sentinels names it (a plain connection, never TLS).
        assert "tcp-check connect addr 127.0.0.1 port 8404\n" in body
        assert f'tcp-check send "GET /quorum/node{i} HTTP/1.0\\r\\n\\r\\n"' in body
        assert 'expect min-recv 12 rstring "^HTTP/1[.][01] 200 "' in body
        assert re.search(rf"^    server node{i} {hosts[i]}:6379 check resolvers cluster ", body, re.MULTILINE)
        assert "26379" not in body  # the node check asks no Sentinel itself
    votes = haproxy_backends(cfg, r"node\d+_votes")
    assert list(votes) == ["node0_votes", "node1_votes", "node2_votes"]
    for i, body in enumerate(votes.values()):
        # One check-only server per Sentinel (every pod's, not only node i's own), UP while it names node i.
        servers = re.findall(r"^    server (sentinel\d) (\S+) check fall 1 rise 2 resolvers cluster ", body, re.MULTILINE)
        assert servers == [(f"sentinel{j}", f"{hosts[j]}:26379") for j in range(3)]
        # PING's reply marks the end of the answer; then a wrong answer fails without waiting for a timeout.
        assert 'tcp-check send "SENTINEL get-master-addr-by-name nova\\r\\nPING\\r\\n"' in body
        pattern = hosts[i].replace(".", "[.]")
        assert body.index("expect string +PONG") < body.index(f'expect min-recv 0 rstring "\\n{pattern}\\r\\n"')
    # Nothing routes to a votes backend.
    assert not re.search(r"(use_backend|default_backend) node\d_votes", cfg)
    # Frontend health answers the quorum question: 2 of 3 Sentinels.
    health = re.search(r"^frontend health\n(.*?)(?=^\S|\Z)", cfg, flags=re.DOTALL | re.MULTILINE).group(1)
    assert re.findall(r"http-request return status 200 if \{ path /quorum/(node\d) \} \{ nbsrv\((node\d)_votes\) ge 2 \}",
                      health) == [("node0", "node0"), ("node1", "node1"), ("node2", "node2")]
    assert health.index("return status 200") < health.index("http-request return status 503 if { path_beg /quorum/ }")
    # The frontend selects a node whose check passes AND that holds a majority right now; two selected -> reject.
    front = re.search(r"^frontend redis_master\n(.*?)(?=^\S|\Z)", cfg, flags=re.DOTALL | re.MULTILINE).group(1)
    for i in range(3):
        assert f"acl node{i}_up nbsrv(node{i}) gt 0" in front and f"acl node{i}_named nbsrv(node{i}_votes) ge 2" in front
        assert f"use_backend node{i} if node{i}_up node{i}_named" in front
    rejects = re.findall(r"tcp-request connection reject if (node\d)_up \1_named (node\d)_up \2_named", front)
    assert sorted(rejects) == [("node0", "node1"), ("node0", "node2"), ("node1", "node2")]
    assert front.index("tcp-request connection reject") < front.index("use_backend")


def test_proxy_majority_follows_replicas_and_the_bind_address(helm_major: int) -> None:
    cfg = one(objects(helm_major, set_values=("replicas=5", "sentinel.quorum=3", "masterProxy.bindAddress=10.1.2.3",
                                              "masterProxy.healthPort=9000")),
              "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]
    votes = haproxy_backends(cfg, r"node\d+_votes")
    assert len(votes) == 5 and all(len(re.findall(r"^    server sentinel\d ", b, re.MULTILINE)) == 5 for b in votes.values())
    assert len(re.findall(r"nbsrv\(node\d_votes\) ge 3\b", cfg)) == 10  # 3 of 5: the quorum URL and the frontend
    assert "ge 2" not in cfg
    assert len(re.findall(r"tcp-request connection reject if", cfg)) == 10  # every pair of 5
    # The node checks reach frontend health where it listens.
    assert cfg.count("tcp-check connect addr 10.1.2.3 port 9000\n") == 5 and "bind 10.1.2.3:9000" in cfg


def test_proxy_can_be_turned_off(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("masterProxy.enabled=false",))
    assert not [o for o in objs if o.kind == "Deployment" or o.name.endswith("-master")]


def test_rendered_haproxy_config_is_valid_for_haproxy() -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed: run `make setup`")
    cfg = one(objects(4, set_values=("nodeAddresses={127.0.1.1,127.0.1.2,127.0.1.3}",)),
              "ConfigMap", "nova-redis-master")["data"]["haproxy.cfg"]
    proc = subprocess.run(["haproxy", "-c", "-f", "/dev/stdin"], input=cfg, capture_output=True, text=True,
                          env={"REDIS_PASSWORD": "x", "REDIS_PASSWORD_LEN": "1", "SENTINEL_PASSWORD": "yy",
                               "SENTINEL_PASSWORD_LEN": "2", "PATH": "/usr/sbin:/usr/bin:/bin"},
                          check=False)
    assert proc.returncode == 0, proc.stderr


# ---- files/ -> ConfigMaps --------------------------------------------------------------------------------------


def test_scripts_in_the_configmap_are_the_files_and_pass_shellcheck(helm_major: int, tmp_path: Path) -> None:
    objs = objects(helm_major)
    data = dict(one(objs, "ConfigMap", "nova-redis-config")["data"])
    data.update(one(objs, "ConfigMap", "nova-redis-master")["data"])
    scripts = {k: v for k, v in data.items() if k.endswith(".sh")}
    assert set(scripts) == {"common.sh", "start-redis.sh", "start-sentinel.sh", "prestop-redis.sh",
                            "prestop-sentinel.sh", "probe.sh", "start-haproxy.sh"}
    for name, text in scripts.items():
        source = next(CHART.glob(f"files/*/{name}"))
        assert text.rstrip("\n") == source.read_text().rstrip("\n"), name
        (tmp_path / name).write_text(text)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run(["shellcheck", "-s", "sh", "-x", *sorted(scripts)], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


# ---- metrics ---------------------------------------------------------------------------------------------------


def test_metrics_sidecar_and_service_monitor_only_when_the_crd_exists(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("metrics.enabled=true",))
    sts = one(objs, "StatefulSet")
    exporter = container(sts, "metrics")
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9121}]
    assert not [o for o in objs if o.kind == "ServiceMonitor"]
    with_crd = objects(helm_major, set_values=("metrics.enabled=true",),
                       api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))
    sm = one(with_crd, "ServiceMonitor", "nova-redis")
    assert selects(sm["spec"]["selector"]["matchLabels"], one(with_crd, "Service", "nova-redis-metrics")["metadata"]["labels"])


# ---- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("set_value", "message"), [
    # the schema catches some before the templates do; either way the key's path is named
    ("replicas=2", "at '/replicas': minimum: got 2, want 3"),
    ("sentinel.quorum=4", "sentinel.quorum is 4"),
    ("nodeAddresses={127.0.0.1}", "nodeAddresses has 1 entries"),
    ("affinity.podAntiAffinity=always", "at '/affinity/podAntiAffinity': value must be one of"),
    ("image.tag=", "image.tag and image.digest are both empty"),
    ("sentinel.masterSet=a b", "sentinel.masterSet"),
])
@pytest.mark.helm3
def test_bad_values_fail_with_a_message_naming_the_key(helm_major: int, set_value: str, message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHART, set_values=[set_value], helm=helm.find_helm(helm_major))
    assert message in str(err.value)


SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def test_chart_metadata_has_a_semver_version_and_a_real_description() -> None:
    # The increment itself (a chart change bumps the version) is checked by tools.ctlint against the merge base.
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert SEMVER.match(str(meta["version"])), meta["version"]
    assert SEMVER.match(str(meta["appVersion"])), meta["appVersion"]
    assert "placeholder" not in meta["description"] and "Sentinel" in meta["description"]


def test_network_policies_select_every_pod_and_open_only_the_service_ports(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("metrics.enabled=true",))
    policies = [o.obj for o in objs if o.kind == "NetworkPolicy"]
    for w in workloads(objs):
        labels = w["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], labels)]
        assert len(mine) == 1, w["metadata"]["name"]
        ports = {p["port"] for rule in mine[0]["spec"]["ingress"] for p in rule["ports"]}
        container_ports = {p["name"] for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        assert ports <= container_ports
        assert ports == ({"redis", "sentinel", "metrics", "sentinel-metrics"} if w["kind"] == "StatefulSet"
                         else {"redis", "metrics"})


@pytest.mark.parametrize("set_values", [
    ("metrics.enabled=true",),
    ("metrics.enabled=true", "networkPolicy.allowFrom[0].podSelector.matchLabels.app=x",
     "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=obs"),
])
def test_every_network_policy_ingress_rule_names_its_ports(helm_major: int, set_values: tuple[str, ...]) -> None:
    # A rule with `from` but no `ports` opens every port to those peers.
    policies = [o.obj for o in objects(helm_major, set_values=set_values) if o.kind == "NetworkPolicy"]
    assert {p["metadata"]["name"] for p in policies} == {"nova-redis", "nova-redis-master"}
    for p in policies:
        for n, rule in enumerate(p["spec"].get("ingress") or []):
            assert rule.get("from"), f"{p['metadata']['name']} ingress[{n}] has no peers"
            assert rule.get("ports"), f"{p['metadata']['name']} ingress[{n}] has no ports"
            assert all(port.get("port") for port in rule["ports"]), f"{p['metadata']['name']} ingress[{n}]"


def test_acl_users_get_their_own_prefix_and_generated_password(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("aclUsers.user-service.keyPrefix=user:",
                                           "aclUsers.search-service.keyPrefix=search:",
                                           "aclUsers.search-service.commands=+@read"))
    secret = one(objs, "Secret", "nova-redis")
    assert set(secret["data"]) == {"redis-password", "sentinel-password", "acl-user-service-password",
                                   "acl-search-service-password"}
    redis_env = env_of(container(one(objs, "StatefulSet"), "redis"))
    users = {redis_env[f"ACL_USER_{i}_NAME"]: (redis_env[f"ACL_USER_{i}_RULES"], redis_env[f"ACL_USER_{i}_PASSWORD"])
             for i in range(2)}
    assert users["user-service"][0] == "~user:* &user:* +@all -@admin -@dangerous"
    assert users["search-service"][0] == "~search:* &search:* +@read"
    assert users["user-service"][1]["secretKeyRef"] == {"name": "nova-redis", "key": "acl-user-service-password"}
    assert "ACL_USER_0_NAME" not in env_of(container(one(objs, "StatefulSet"), "sentinel"))


@pytest.mark.parametrize(("set_value", "message"), [
    ("aclUsers.default.keyPrefix=x:", "aclUsers.default"),
    ("aclUsers.svc.commands=+@all", "at '/aclUsers/svc': missing property 'keyPrefix'"),
    ("aclUsers.Svc.keyPrefix=x:", "aclUsers.Svc"),
])
@pytest.mark.helm3
def test_bad_acl_users_fail_with_a_message_naming_the_key(helm_major: int, set_value: str, message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHART, set_values=[set_value], helm=helm.find_helm(helm_major))
    assert message in str(err.value)


@pytest.mark.helm3
def test_acl_users_need_auth(helm_major: int) -> None:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHART, set_values=["aclUsers.svc.keyPrefix=s:", "auth.enabled=false"], helm=helm.find_helm(helm_major))
    assert "aclUsers needs auth.enabled=true" in str(err.value)


def test_global_registry_and_pull_secrets_reach_every_pod(helm_major: int) -> None:
    objs = objects(helm_major, set_values=("global.imageRegistry=mirror.local", "global.imagePullSecrets={g}",
                                           "imagePullSecrets={c}", "metrics.enabled=true"))
    for w in workloads(objs):
        pod = w["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "g"}, {"name": "c"}]
        assert all(c["image"].startswith("mirror.local/") for c in containers(pod))
