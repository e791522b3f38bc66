"""nova-postgres config-apply Job (issue 11.1), rendered through real helm: dynamic settings leave the StatefulSet's
pod template alone, the Job's name follows its input, it reaches Patroni's REST port only, and the script's
difference keeps or prunes removed parameters as documented."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tools.manifest import KubeObject

CHART = CHARTS / "nova-postgres"
NS = "nova-database"
DYNAMIC = ("postgresql.parameters.shared_buffers=512MB", "postgresql.parameters.work_mem=16MB",
           "postgresql.parameters.max_connections=300", "patroni.ttl=30", "patroni.maximumLagOnFailover=2097152",
           "patroni.synchronousMode=false", "walArchive.enabled=true", "walArchive.archiveCommand=/bin/true",
           # Every other DCS key the chart renders: failsafe_mode, synchronous_mode_strict, synchronous_node_count,
           # use_pg_rewind, loop_wait, retry_timeout, and a key set through extraDynamicConfig.
           "patroni.failsafeMode=true", "patroni.synchronousModeStrict=true", "patroni.synchronousNodeCount=2",
           "patroni.usePgRewind=false", "patroni.loopWait=4", "patroni.retryTimeout=6",
           "patroni.extraDynamicConfig.check_timeline=true")


def objs(*set_values: str) -> list[KubeObject]:
    return render(CHART, (), set_values, major=4, namespace=NS)


def one(objects: list[KubeObject], kind: str, suffix: str = "", component: str | None = None) -> dict[str, Any]:
    found = [o.obj for o in objects if o.kind == kind and o.name.endswith(suffix)
             and (component is None or o.obj["metadata"]["labels"].get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, [o.ref for o in objects if o.kind == kind]
    return found[0]


def pod_template(objects: list[KubeObject]) -> str:
    sts = one(objects, "StatefulSet", component="postgres")
    return json.dumps(sts["spec"]["template"], sort_keys=True)


def desired(objects: list[KubeObject]) -> dict[str, Any]:
    return json.loads(one(objects, "ConfigMap", "-config-apply")["data"]["desired.json"])


def bootstrap_dcs(objects: list[KubeObject]) -> dict[str, Any]:
    return yaml.safe_load(one(objects, "ConfigMap", "-patroni")["data"]["patroni.yml"])["bootstrap"]["dcs"]


@pytest.fixture(scope="module")
def default() -> list[KubeObject]:
    return objs()


@pytest.fixture(scope="module")
def changed() -> list[KubeObject]:
    return objs(*DYNAMIC)


def test_pod_template_is_byte_identical_when_only_dynamic_settings_change(
        default: list[KubeObject], changed: list[KubeObject]) -> None:
    before, after = bootstrap_dcs(default), bootstrap_dcs(changed)
    unchanged = sorted(k for k in set(before) | set(after) if k != "postgresql" and before.get(k) == after.get(k))
    assert unchanged == [], f"DYNAMIC must change every top-level DCS key the chart renders: {unchanged}"
    assert pod_template(default) == pod_template(changed)
    etcd = [one(o, "StatefulSet", component="etcd")["spec"]["template"] for o in (default, changed)]
    assert etcd[0] == etcd[1], "a DCS setting must not roll etcd either"


def test_a_pod_local_setting_still_rolls_the_statefulset(default: list[KubeObject]) -> None:
    local = objs("patroni.logLevel=DEBUG")
    annotations = one(local, "StatefulSet", component="postgres")["spec"]["template"]["metadata"]["annotations"]
    before = one(default, "StatefulSet", component="postgres")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] != before["checksum/config"]


def test_desired_state_is_bootstrap_dcs_and_a_change_is_a_new_job(
        default: list[KubeObject], changed: list[KubeObject]) -> None:
    assert desired(default) == bootstrap_dcs(default)
    assert desired(changed) == bootstrap_dcs(changed)
    assert desired(changed)["postgresql"]["parameters"]["archive_command"] == "/bin/true"
    name = one(default, "Job", component="config-apply")["metadata"]["name"]
    assert name.startswith("nova-postgres-config-apply-")
    assert one(objs(), "Job", component="config-apply")["metadata"]["name"] == name, "unchanged: same Job"
    assert one(changed, "Job", component="config-apply")["metadata"]["name"] != name


def test_whole_number_parameters_render_without_an_exponent() -> None:
    params = desired(objs("postgresql.parameters.maintenance_work_mem=1048576"))["postgresql"]["parameters"]
    assert params["maintenance_work_mem"] == "1048576"
    assert desired(objs())["maximum_lag_on_failover"] == 1048576


def test_extra_dynamic_config_is_merged_into_both_readers() -> None:
    objects = objs("patroni.extraDynamicConfig.failsafe_mode=true",
                   "patroni.extraDynamicConfig.postgresql.parameters.track_io_timing=on")
    for doc in (desired(objects), bootstrap_dcs(objects)):
        assert doc["failsafe_mode"] is True
        assert doc["postgresql"]["parameters"]["track_io_timing"] == "on"
        assert doc["postgresql"]["parameters"]["shared_buffers"] == "256MB", "a merge, not a replacement"


def test_job_reaches_patroni_rest_only_with_the_rest_password_and_no_token(default: list[KubeObject]) -> None:
    job = one(default, "Job", component="config-apply")
    spec = job["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PATRONI_RESTAPI_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "rest-password"
    members = env["NOVA_PATRONI_MEMBERS"]["value"].split(",")
    assert members == [f"http://nova-postgres-{i}.nova-postgres-headless.{NS}.svc.cluster.local:8008"
                       for i in range(3)]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    policy = one(default, "NetworkPolicy", "nova-postgres")
    selector = one(default, "NetworkPolicy", "-config-apply")["spec"]["podSelector"]["matchLabels"]
    assert job["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    rules = [r for r in policy["spec"]["ingress"]
             if any((p.get("podSelector") or {}).get("matchLabels") == selector for p in r["from"])]
    assert [r["ports"] for r in rules] == [[{"port": "patroni"}]]


def test_disabled_config_apply_renders_no_job_and_no_rest_rule() -> None:
    objects = objs("patroni.configApply.enabled=false")
    assert not [o for o in objects if "config-apply" in o.name]
    policy = one(objects, "NetworkPolicy", "nova-postgres")
    assert all("config-apply" not in json.dumps(r) for r in policy["spec"]["ingress"])


# -- the script's difference (pure functions, loaded from the ConfigMap the Job runs it from) --------------------
@pytest.fixture(scope="module")
def script(default: list[KubeObject], tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The rendered config_apply.py, imported from a temp file: what the Job runs, and no bytecode cache is
    written into the chart (a __pycache__ there would make the chart tree differ from a fresh clone's)."""
    path = tmp_path_factory.mktemp("config-apply") / "config_apply.py"
    path.write_text(one(default, "ConfigMap", "-config-apply")["data"]["config_apply.py"])
    spec = importlib.util.spec_from_file_location("config_apply", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CURRENT = {"ttl": 20, "loop_wait": 5, "failsafe_mode": True,
           "postgresql": {"use_slots": True, "parameters": {"shared_buffers": "256MB", "max_connections": 200,
                                                            "log_min_duration_statement": "1000"}}}
DESIRED = {"ttl": 30, "loop_wait": 5,
           "postgresql": {"use_slots": True, "parameters": {"shared_buffers": "256MB", "max_connections": "200",
                                                            "work_mem": "8MB"}}}


def test_difference_sets_changed_keys_prunes_removed_parameters_and_keeps_foreign_keys(script: ModuleType) -> None:
    changes: list[dict[str, Any]] = []
    kept: list[str] = []
    patch = script.diff(CURRENT, DESIRED, (), True, changes, kept)
    assert patch == {"ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB", "log_min_duration_statement": None}}}
    assert [(c["key"], c["old"], c["new"]) for c in changes] == [
        ("ttl", 20, 30), ("postgresql.parameters.work_mem", None, "8MB"),
        ("postgresql.parameters.log_min_duration_statement", "1000", None)]
    assert kept == []


def test_difference_without_pruning_keeps_and_lists_removed_parameters(script: ModuleType) -> None:
    changes: list[dict[str, Any]] = []
    kept: list[str] = []
    patch = script.diff(CURRENT, DESIRED, (), False, changes, kept)
    assert patch == {"ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB"}}}
    assert kept == ["postgresql.parameters.log_min_duration_statement"]
