"""The escape hatches of nova, nova-redis and nova-postgres (issue 14.3), rendered through real helm.

One scheme per pod kind: nova's services (services.defaults / services.microservices.<name>), nova-redis's
redis.* (StatefulSet) and masterProxy.* (HAProxy Deployment), nova-postgres's top level (PostgreSQL
StatefulSet), etcd.* and bootstrap.* (the Job). Each hatch lands in its own component only, is typed by the
strict schema (a typo next to it is refused, naming the path), never changes a selector, and tools.lint holds
what a user adds to the chart's policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, ROOT, render
from tools import charts, helm
from tools.lint.config import load_config
from tools.lint.engine import lint
from tools.manifest import KubeObject

POD_KINDS = ("Deployment", "StatefulSet", "Job")
LIST_HATCHES = ("extraEnv", "extraEnvFrom", "extraVolumes", "extraVolumeMounts", "sidecars", "extraInitContainers")
MAP_HATCHES = ("podAnnotations", "podLabels", "nodeSelector", "tolerations", "affinity", "priorityClassName")
POD_HATCHES = LIST_HATCHES + MAP_HATCHES

RESTRICTED = {
    "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "50m", "memory": "32Mi"}}
PROBE = {"exec": {"command": ["true"]}, "periodSeconds": 30}


def sidecar(name: str = "helper", **changes: Any) -> dict[str, Any]:
    """A sidecar that meets the chart's policy (restricted, requests and limits, probes); ``changes`` override."""
    c: dict[str, Any] = {
        "name": name, "image": "docker.io/library/busybox:1.36.1", "command": ["sleep", "infinity"],
        "livenessProbe": PROBE, "readinessProbe": PROBE, "resources": SMALL, "securityContext": dict(RESTRICTED),
    }
    c.update(changes)
    return c


def init_container(name: str = "prepare", **changes: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": "docker.io/library/busybox:1.36.1", "command": ["true"],
                         "resources": SMALL, "securityContext": dict(RESTRICTED)}
    c.update(changes)
    return c


HATCH_VALUES: dict[str, Any] = {
    "extraEnv": [{"name": "EXTRA_ONE", "value": "1"}, {"name": "EXTRA_RELEASE", "value": "{{ .Release.Name }}"}],
    "extraEnvFrom": [{"secretRef": {"name": "extra-secret"}}],
    "extraVolumes": [{"name": "extra", "emptyDir": {"sizeLimit": "1Mi"}}],
    "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
    "sidecars": [sidecar()],
    "extraInitContainers": [init_container()],
    "podAnnotations": {"example.com/owner": "team-a"},
    "podLabels": {"example.com/team": "a"},
    "priorityClassName": "high",
    "nodeSelector": {"example.com/pool": "a"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "example.com/pool", "operator": "In", "values": ["a"]}]}]}}},
}


@dataclass(frozen=True)
class Component:
    chart: str
    path: tuple[str, ...]  # where its hatches live in the chart's values
    kind: str
    name: str  # the workload's name (a prefix for the hash-named bootstrap Job)
    containers: tuple[str, ...]  # the chart containers that get extraEnv, extraEnvFrom and extraVolumeMounts
    label_key: str  # the values path a refused pod label is reported under

    @property
    def id(self) -> str:
        return f"{self.chart}:{'.'.join(self.path) or '(top level)'}"


COMPONENTS = [
    Component("nova-redis", ("redis",), "StatefulSet", "nova-redis", ("redis", "sentinel"), "redis.podLabels"),
    Component("nova-redis", ("masterProxy",), "Deployment", "nova-redis-master", ("haproxy",),
              "masterProxy.podLabels"),
    Component("nova-postgres", (), "StatefulSet", "nova-postgres", ("postgres",), "podLabels"),
    Component("nova-postgres", ("etcd",), "StatefulSet", "nova-postgres-etcd", ("etcd",), "etcd.podLabels"),
    Component("nova-postgres", ("bootstrap",), "Job", "nova-postgres-bootstrap-", ("bootstrap",),
              "bootstrap.podLabels"),
    Component("nova", ("services", "microservices", "auth-service"), "Deployment", "nova-auth-service",
              ("auth-service",), "services.microservices.auth-service.podLabels (over services.defaults.podLabels)"),
    # The defaults reach every service; the first one rendered (auth-service) is named.
    Component("nova", ("services", "defaults"), "Deployment", "nova-user-service", ("user-service",),
              "services.microservices.auth-service.podLabels (over services.defaults.podLabels)"),
]


def nest(path: tuple[str, ...], value: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


def render_with(chart: str, values: dict[str, Any], tmp_path: Path, *, major: int = 4) -> list[KubeObject]:
    file = tmp_path / f"{chart}-values.yaml"
    file.write_text(yaml.safe_dump(values, sort_keys=False))
    return render(CHARTS / chart, [file], major=major)


def render_error(chart: str, values: dict[str, Any], tmp_path: Path, *, major: int = 4) -> str:
    with pytest.raises(helm.HelmError) as err:
        render_with(chart, values, tmp_path, major=major)
    return str(err.value)


def workload(objs: list[KubeObject], c: Component) -> dict[str, Any]:
    found = [o.obj for o in objs if o.kind == c.kind and o.name.startswith(c.name)
             and (c.kind == "Job" or o.name == c.name)]
    assert len(found) == 1, f"expected one {c.kind} {c.name}, found {[o.name for o in objs if o.kind == c.kind]}"
    return found[0]


def pod_workloads(objs: list[KubeObject]) -> list[dict[str, Any]]:
    return [o.obj for o in objs if o.kind in POD_KINDS]


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


# ---- every hatch lands in its own component, after the chart's own entries ----------------------------------


@pytest.mark.parametrize("c", COMPONENTS, ids=lambda c: c.id)
def test_every_hatch_lands_in_its_own_component_after_the_charts_entries(c: Component, tmp_path: Path) -> None:
    plain = workload(render(CHARTS / c.chart), c)
    objs = render_with(c.chart, nest(c.path, HATCH_VALUES), tmp_path)
    w = workload(objs, c)
    template, pod = w["spec"]["template"], w["spec"]["template"]["spec"]
    plain_pod = plain["spec"]["template"]["spec"]

    assert template["metadata"]["annotations"]["example.com/owner"] == "team-a"
    assert template["metadata"]["labels"]["example.com/team"] == "a"
    assert pod["priorityClassName"] == "high"
    assert pod["nodeSelector"] == HATCH_VALUES["nodeSelector"]
    assert pod["tolerations"] == HATCH_VALUES["tolerations"]
    assert pod["affinity"] == HATCH_VALUES["affinity"]
    assert pod["initContainers"][-1] == HATCH_VALUES["extraInitContainers"][0]
    assert pod["containers"][-1] == HATCH_VALUES["sidecars"][0]
    assert [x["name"] for x in pod["containers"][:-1]] == [x["name"] for x in plain_pod["containers"]]
    assert pod["volumes"][-1] == HATCH_VALUES["extraVolumes"][0]
    assert pod.get("volumes", [])[:-1] == plain_pod.get("volumes", [])
    for name in c.containers:
        mine = next(x for x in pod["containers"] if x["name"] == name)
        before = next(x for x in plain_pod["containers"] if x["name"] == name)
        # extraEnv is rendered with tpl: {{ .Release.Name }} is the release.
        assert mine["env"] == [*before["env"], {"name": "EXTRA_ONE", "value": "1"},
                               {"name": "EXTRA_RELEASE", "value": "nova"}], name
        assert mine["envFrom"] == [*before.get("envFrom", []), {"secretRef": {"name": "extra-secret"}}], name
        assert mine["volumeMounts"] == [*before["volumeMounts"], {"name": "extra", "mountPath": "/extra"}], name
        assert {k: v for k, v in mine.items() if k not in ("env", "envFrom", "volumeMounts")} == \
            {k: v for k, v in before.items() if k not in ("env", "envFrom", "volumeMounts")}, name


@pytest.mark.parametrize("c", COMPONENTS, ids=lambda c: c.id)
def test_a_components_hatches_reach_no_other_pod(c: Component, tmp_path: Path) -> None:
    objs = render_with(c.chart, nest(c.path, HATCH_VALUES), tmp_path)
    target = workload(objs, c)["metadata"]["name"]
    reached = {w["metadata"]["name"] for w in pod_workloads(objs)
               if "helper" in {x["name"] for x in w["spec"]["template"]["spec"]["containers"]}}
    if c.path == ("services", "defaults"):  # the defaults are every service's
        services = {o.name for o in objs if o.kind == "Deployment" and o.source == "nova/templates/services/deployment.yaml"}
        assert target in reached and reached == services and len(services) == 5
    else:
        assert reached == {target}
    for w in pod_workloads(objs):
        if w["metadata"]["name"] not in reached:
            spec = w["spec"]["template"]["spec"]
            assert spec.get("priorityClassName") != "high" and "example.com/pool" not in spec.get("nodeSelector", {})


def test_a_services_own_list_replaces_the_defaults_list(tmp_path: Path) -> None:
    values = {"services": {"defaults": {"sidecars": [sidecar("everywhere")]},
                           "microservices": {"auth-service": {"sidecars": [sidecar("only-auth")]}}}}
    objs = render_with("nova", values, tmp_path)
    names = {o.name: [x["name"] for x in o.obj["spec"]["template"]["spec"]["containers"]]
             for o in objs if o.kind == "Deployment"}
    assert names["nova-auth-service"] == ["auth-service", "only-auth"]
    assert names["nova-user-service"] == ["user-service", "everywhere"]


def test_service_hatches_are_templated_with_the_service_in_context(tmp_path: Path) -> None:
    values = {"services": {"defaults": {"sidecars": [sidecar(
        envFrom=[{"configMapRef": {"name": "{{ .Service.configMap }}"}}],
        env=[{"name": "SOURCE", "value": "{{ .Service.name }}/{{ .Service.fullname }}"}])]}}}
    objs = render_with("nova", values, tmp_path)
    dep = next(o.obj for o in objs if o.kind == "Deployment" and o.name == "nova-search-service")
    helper = dep["spec"]["template"]["spec"]["containers"][-1]
    assert helper["env"] == [{"name": "SOURCE", "value": "search-service/nova-search-service"}]
    config = helper["envFrom"][0]["configMapRef"]["name"]
    assert config == "nova-search-service-config"
    assert any(o.kind == "ConfigMap" and o.name == config for o in objs)


# ---- selectors, name clashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("c", COMPONENTS, ids=lambda c: c.id)
def test_pod_labels_go_to_the_pod_template_and_never_change_a_selector(c: Component, tmp_path: Path) -> None:
    plain = render(CHARTS / c.chart)
    objs = render_with(c.chart, nest(c.path, {"podLabels": {"example.com/team": "a"}}), tmp_path)
    assert workload(objs, c)["spec"]["template"]["metadata"]["labels"]["example.com/team"] == "a"
    selectors = {(o.kind, o.name): o.obj["spec"].get("selector") for o in plain
                 if o.kind in ("Deployment", "StatefulSet", "Service", "PodDisruptionBudget")}
    assert selectors == {(o.kind, o.name): o.obj["spec"].get("selector") for o in objs if (o.kind, o.name) in selectors}
    assert all("example.com/team" not in str(s) for s in selectors.values())
    for o in objs:
        if o.kind in ("Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"):
            assert "example.com/team" not in o.labels, f"{o.ref} got a pod label"


@pytest.mark.parametrize("c", COMPONENTS, ids=lambda c: c.id)
def test_a_pod_label_that_is_a_selector_label_is_refused_naming_the_key(c: Component, tmp_path: Path) -> None:
    message = render_error(c.chart, nest(c.path, {"podLabels": {"app.kubernetes.io/component": "other"}}), tmp_path)
    assert f"{c.label_key}: app.kubernetes.io/component is a selector label of the chart" in message


@pytest.mark.parametrize(("chart", "path", "values", "expected"), [
    ("nova-redis", ("redis",), {"sidecars": [sidecar("sentinel")]}, "redis.sidecars[0].name=sentinel"),
    ("nova-redis", ("masterProxy",), {"extraInitContainers": [init_container("x")], "sidecars": [sidecar("x")]},
     "masterProxy.sidecars[0].name=x"),
    ("nova-postgres", (), {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}, "extraVolumes[0].name=tmp"),
    ("nova-postgres", ("etcd",), {"extraInitContainers": [init_container("etcd")]},
     "etcd.extraInitContainers[0].name=etcd"),
    ("nova", ("services", "defaults"), {"sidecars": [sidecar("wait-for-dependencies")]},
     ".sidecars[0].name=wait-for-dependencies"),
])
def test_a_hatch_named_like_the_charts_own_container_or_volume_is_refused(
        chart: str, path: tuple[str, ...], values: dict[str, Any], expected: str, tmp_path: Path) -> None:
    message = render_error(chart, nest(path, values), tmp_path)
    assert expected in message and "choose another name" in message


# ---- ServiceAccount annotations (IRSA, Workload Identity) ---------------------------------------------------


IRSA = {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/nova"}


@pytest.mark.parametrize(("chart", "values", "account"), [
    ("nova-redis", {"serviceAccount": {"annotations": IRSA}}, "nova-redis"),
    ("nova-postgres", {"serviceAccount": {"annotations": IRSA}}, "nova-postgres"),
    ("nova", {"services": {"defaults": {"serviceAccount": {"annotations": IRSA}}}}, "nova-search-service"),
])
def test_service_account_annotations_reach_the_account_the_pods_run_as(
        chart: str, values: dict[str, Any], account: str, tmp_path: Path) -> None:
    objs = render_with(chart, values, tmp_path)
    sa = next(o for o in objs if o.kind == "ServiceAccount" and o.name == account)
    assert sa.annotations == IRSA
    assert any(w["spec"]["template"]["spec"].get("serviceAccountName") == account for w in pod_workloads(objs))


def test_a_services_own_service_account_annotations_win_over_the_defaults(tmp_path: Path) -> None:
    own = {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/user-service"}
    objs = render_with("nova", {"services": {"defaults": {"serviceAccount": {"annotations": IRSA}},
                                             "microservices": {"user-service": {"serviceAccount": {"annotations": own}}}}},
                       tmp_path)
    accounts = {o.name: o.annotations for o in objs if o.kind == "ServiceAccount"}
    assert accounts["nova-user-service"] == own
    assert accounts["nova-auth-service"] == IRSA


# ---- extraObjects -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", ["nova", "nova-redis", "nova-postgres"])
def test_extra_objects_are_rendered_with_tpl_from_a_map_or_a_string(chart: str, tmp_path: Path) -> None:
    values = {"extraObjects": [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "{{ .Release.Name }}-from-map", "namespace": "{{ .Release.Namespace }}"},
         "data": {"chart": "{{ .Chart.Name }}"}},
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-from-string\n",
        "{{- if false }}\napiVersion: v1\nkind: ConfigMap\n{{- end }}\n",  # renders nothing: skipped
    ]}
    objs = [o for o in render_with(chart, values, tmp_path) if o.source == f"{chart}/templates/extra-objects.yaml"]
    assert [(o.kind, o.name) for o in objs] == [("ConfigMap", "nova-from-map"), ("ConfigMap", "nova-from-string")]
    assert objs[0].namespace == "default" and objs[0].obj["data"] == {"chart": chart}


@pytest.mark.parametrize("chart", ["nova", "nova-redis", "nova-postgres"])
def test_an_extra_object_without_kind_is_refused_naming_its_index(chart: str, tmp_path: Path) -> None:
    values = {"extraObjects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}},
                               "apiVersion: v1\nmetadata:\n  name: no-kind\n"]}
    message = render_error(chart, values, tmp_path)
    assert "extraObjects[1]: renders no Kubernetes object" in message


def test_no_extra_objects_template_output_without_extra_objects() -> None:
    for chart in ("nova", "nova-redis", "nova-postgres"):
        assert not [o for o in render(CHARTS / chart) if o.source == f"{chart}/templates/extra-objects.yaml"]


# ---- the strict schema: exactly these keys, Kubernetes types, typos refused (helm 4 and 3) -------------------


@pytest.mark.parametrize(("chart", "values", "path", "typo"), [
    ("nova-redis", {"redis": {"sidecars": [], "sidecarz": []}}, "/redis", "sidecarz"),
    ("nova-redis", {"masterProxy": {"sidecars": [sidecar(imagePullPolicyy="Always")]}}, "/masterProxy/sidecars/0",
     "imagePullPolicyy"),
    ("nova-postgres", {"etcd": {"extraEnv": [], "extraEnvs": []}}, "/etcd", "extraEnvs"),
    ("nova-postgres", {"bootstrap": {"extraVolumes": [{"name": "x", "emptyDirr": {}}]}},
     "/bootstrap/extraVolumes/0", "emptyDirr"),
    ("nova", {"services": {"microservices": {"user-service": {"extraVolumeMount": []}}}},
     "/services/microservices/user-service", "extraVolumeMount"),
    ("nova", {"services": {"defaults": {"serviceAccount": {"annotation": {}}}}}, "/services/defaults/serviceAccount",
     "annotation"),
    ("nova", {"extraObject": []}, "", "extraObject"),
])
def test_the_schema_refuses_a_typo_next_to_a_hatch_naming_the_path(
        chart: str, values: dict[str, Any], path: str, typo: str, helm_major: int, tmp_path: Path) -> None:
    message = render_error(chart, values, tmp_path, major=helm_major)
    assert f"at '{path}': additional properties '{typo}' not allowed" in message


@pytest.mark.parametrize(("chart", "values", "path"), [
    ("nova-redis", {"redis": {"extraEnv": [{"value": "no name"}]}}, "/redis/extraEnv/0"),
    ("nova-postgres", {"tolerations": [{"key": "k", "tolerationSeconds": "long"}]}, "/tolerations/0/tolerationSeconds"),
    ("nova", {"services": {"defaults": {"podLabels": {"a": 1}}}}, "/services/defaults/podLabels/a"),
    ("nova-redis", {"extraObjects": [{"kind": "ConfigMap"}]}, "/extraObjects/0"),
])
def test_the_schema_types_hatches_with_the_kubernetes_definitions(
        chart: str, values: dict[str, Any], path: str, helm_major: int, tmp_path: Path) -> None:
    message = render_error(chart, values, tmp_path, major=helm_major)
    assert f"at '{path}'" in message


@pytest.mark.parametrize(("chart", "key"), [
    ("nova-redis", "podAnnotations"), ("nova-redis", "nodeSelector"), ("nova-redis", "tolerations"),
    ("nova-redis", "priorityClassName"),
])
def test_the_moved_top_level_keys_of_nova_redis_are_refused(chart: str, key: str, tmp_path: Path) -> None:
    """0.4.0 moved them into redis.* and masterProxy.*; an old values file stops with the key's name."""
    value: Any = "x" if key == "priorityClassName" else ([] if key == "tolerations" else {})
    message = render_error(chart, {key: value}, tmp_path)
    assert f"additional properties '{key}' not allowed" in message


# ---- tools.lint applies the chart's policy to what a user adds ---------------------------------------------


LINT_CASES = [
    # A sidecar that runs as root.
    ("nova-redis", ("redis",), {"sidecars": [sidecar("rooty", securityContext={**RESTRICTED, "runAsUser": 0,
                                                                                 "runAsNonRoot": False})]},
     "StatefulSet", "nova-redis", "redis/statefulset.yaml",
     {("run-as-non-root", "rooty", "containers", "securityContext.runAsNonRoot"),
      ("run-as-non-root", "rooty", "containers", "securityContext.runAsUser")}),
    # The same root sidecar in the other two charts: a service's Deployment, PostgreSQL's StatefulSet
    # (A service's sidecar reads the resilience settings like the extras scenario's, so only the root is wrong.)
    ("nova", ("services", "microservices", "user-service"), {"sidecars": [sidecar("rooty", securityContext={
        **RESTRICTED, "runAsUser": 0, "runAsNonRoot": False},
        envFrom=[{"configMapRef": {"name": "{{ .Service.configMap }}"}}])]},
     "Deployment", "nova-user-service", "services/deployment.yaml",
     {("run-as-non-root", "rooty", "containers", "securityContext.runAsNonRoot"),
      ("run-as-non-root", "rooty", "containers", "securityContext.runAsUser")}),
    ("nova-postgres", (), {"sidecars": [sidecar("rooty", securityContext={**RESTRICTED, "runAsUser": 0,
                                                                           "runAsNonRoot": False})]},
     "StatefulSet", "nova-postgres", "postgres/statefulset.yaml",
     {("run-as-non-root", "rooty", "containers", "securityContext.runAsNonRoot"),
      ("run-as-non-root", "rooty", "containers", "securityContext.runAsUser")}),
    # A privileged init container (privileged implies privilege escalation).
    ("nova-postgres", ("etcd",), {"extraInitContainers": [init_container("priv", securityContext={
        **{k: v for k, v in RESTRICTED.items() if k != "allowPrivilegeEscalation"}, "privileged": True})]},
     "StatefulSet", "nova-postgres-etcd", "etcd/statefulset.yaml", {("no-privileged", "priv", "initContainers", "securityContext.privileged"),
                                           ("no-privilege-escalation", "priv", "initContainers",
                                            "securityContext.allowPrivilegeEscalation")}),
    # A hostPath volume.
    ("nova", ("services", "microservices", "auth-service"),
     {"extraVolumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]},
     "Deployment", "nova-auth-service", "services/deployment.yaml", {("no-host-path", None, "volumes", "hostPath")}),
]


@pytest.mark.parametrize(("chart", "path", "values", "kind", "name", "template", "expected"), LINT_CASES,
                         ids=["root-sidecar", "root-sidecar-service", "root-sidecar-postgres",
                              "privileged-init-container", "hostpath-volume"])
def test_lint_holds_what_a_hatch_adds_to_the_charts_policy(
        chart: str, path: tuple[str, ...], values: dict[str, Any], kind: str, name: str, template: str,
        expected: set[tuple[str, str | None, str, str]], tmp_path: Path) -> None:
    objs = render_with(chart, nest(path, values), tmp_path)
    pod = next(o for o in objs if o.kind == kind and o.name == name).obj["spec"]["template"]["spec"]
    findings = lint(objs, load_config(ROOT / ".nova-lint.yaml"), ["1.29"])
    got = {(f.rule, f.kind, f.name, f.container, f.path) for f in findings}
    want = set()
    for rule, container, field, rest in expected:
        if field == "volumes":
            index = next(i for i, v in enumerate(pod["volumes"]) if "hostPath" in v)
        else:
            index = next(i for i, c in enumerate(pod[field]) if c["name"] == container)
        want.add((rule, kind, name, container, f"spec.template.spec.{field}[{index}].{rest}"))
    assert got == want
    assert {f.template for f in findings} == {f"{chart}/templates/{template}"}


# ---- the extras scenarios: every hatch of every component, lint clean ---------------------------------------


EXTRAS = {chart: CHARTS / chart / "ci" / "render" / "extras-values.yaml" for chart in ("nova", "nova-redis", "nova-postgres")}


def _dig(values: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        values = values.get(key) or {}
    return values


@pytest.mark.parametrize("chart", sorted(EXTRAS))
def test_the_extras_scenario_is_a_profile_that_uses_every_hatch(chart: str) -> None:
    assert EXTRAS[chart] in charts.profiles(CHARTS / chart)
    values = yaml.safe_load(EXTRAS[chart].read_text())
    for c in COMPONENTS:
        if c.chart == chart and c.path[:2] != ("services", "microservices"):
            unused = [h for h in POD_HATCHES if not _dig(values, c.path).get(h)]
            assert not unused, f"{EXTRAS[chart]}: {c.id} does not use {unused}"
    account = _dig(values, ("services", "defaults") if chart == "nova" else ())["serviceAccount"]["annotations"]
    assert account and len(values["extraObjects"]) >= 2
    assert {type(o) for o in values["extraObjects"]} == {dict, str}


@pytest.mark.parametrize("chart", sorted(EXTRAS))
def test_the_extras_scenario_lints_clean_and_renders_alike_with_helm_3(chart: str) -> None:
    objs = render(CHARTS / chart, [EXTRAS[chart]])
    findings = lint(objs, load_config(ROOT / ".nova-lint.yaml"), ["1.29"])
    assert not findings, [(f.rule, f.name, f.container, f.path) for f in findings]
    assert any(o.source == f"{chart}/templates/extra-objects.yaml" for o in objs)

    def comparable(objects: list[KubeObject]) -> list[tuple[str | None, str]]:
        out = []
        for o in objects:  # what the hatches touch
            if o.kind in (*POD_KINDS, "ServiceAccount") or o.source == f"{chart}/templates/extra-objects.yaml":
                out.append((o.source, yaml.safe_dump(o.obj, sort_keys=True)))
        return sorted(out)

    assert comparable(objs) == comparable(render(CHARTS / chart, [EXTRAS[chart]], major=3))


def test_extra_init_containers_are_the_only_ones_when_a_service_waits_for_nothing(tmp_path: Path) -> None:
    values = {"services": {"microservices": {"auth-service": {"waitFor": {"enabled": False},
                                                              "extraInitContainers": [init_container()]}}}}
    objs = render_with("nova", values, tmp_path)
    pods = {o.name: o.obj["spec"]["template"]["spec"] for o in objs if o.kind == "Deployment"}
    assert pods["nova-auth-service"]["initContainers"] == [init_container()]
    assert [c["name"] for c in pods["nova-user-service"]["initContainers"]] == ["wait-for-dependencies"]


K8S_TYPES = {
    "extraEnv": "io.k8s.api.core.v1.EnvVar", "extraEnvFrom": "io.k8s.api.core.v1.EnvFromSource",
    "extraVolumes": "io.k8s.api.core.v1.Volume", "extraVolumeMounts": "io.k8s.api.core.v1.VolumeMount",
    "sidecars": "io.k8s.api.core.v1.Container", "extraInitContainers": "io.k8s.api.core.v1.Container",
    "tolerations": "io.k8s.api.core.v1.Toleration", "affinity": "io.k8s.api.core.v1.Affinity",
}


def _schema_node(chart: str, path: tuple[str, ...]) -> dict[str, Any]:
    node = json.loads((CHARTS / chart / "values.schema.json").read_text())
    for key in path:
        node = node["properties"][key] if key in node.get("properties", {}) else node["additionalProperties"]
    return node


@pytest.mark.parametrize("c", COMPONENTS, ids=lambda c: c.id)
def test_every_hatch_is_in_the_schema_typed_by_the_bundled_kubernetes_definition(c: Component) -> None:
    node = _schema_node(c.chart, c.path)
    assert node.get("additionalProperties") is False
    props = node["properties"]
    for hatch, definition in K8S_TYPES.items():
        ref = props[hatch].get("items", props[hatch]).get("$ref") or props[hatch]["allOf"][0]["$ref"]
        assert ref == f"#/definitions/{definition}", (c.id, hatch)
    for hatch in ("podAnnotations", "podLabels", "nodeSelector"):
        assert props[hatch]["additionalProperties"] == {"type": "string"}, (c.id, hatch)
    assert props["priorityClassName"]["type"] == "string"
