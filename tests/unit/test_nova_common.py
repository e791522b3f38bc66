"""charts/nova-common, the library chart: its helpers through a tiny chart that uses it, and through the three
charts (wiring, the fixes it brought, render-time refusals), rendered with real helm 4 and helm 3."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, helm_path, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

LIBRARY = CHARTS / "nova-common"
USERS = ("nova", "nova-redis", "nova-postgres")

# A tiny chart that uses the library: each template calls one helper with values taken from the values file.
PROBE_TEMPLATES = {
    "names.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: names
data:
  suffixed: {{ include "nova-common.name.suffixed" (dict "name" .Values.base "suffix" "headless") | quote }}
  trunc: {{ include "nova-common.trunc" .Values.base | quote }}
  nearest: {{ include "nova-common.nearest" (dict "name" .Values.typo "candidates" .Values.known) | quote }}
""",
    "image.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: image
data:
  ref: {{ include "nova-common.image" (dict "ctx" $ "image" .Values.image "key" "image" "defaultTag" .Values.defaultTag) | quote }}
""",
    "pod.yaml": """apiVersion: v1
kind: Pod
metadata:
  name: pod
  labels:
    {{- include "nova-common.labels" (dict "ctx" $ "name" "probe" "component" "web") | nindent 4 }}
spec:
  {{- with include "nova-common.imagePullSecrets" $ }}{{ . | nindent 2 }}{{ end }}
  {{- with include "nova-common.affinity" (dict "mode" .Values.mode "selector" (dict "app" "x") "key" "podAntiAffinity") }}{{ . | nindent 2 }}{{ end }}
  containers:
    - name: web
      image: busybox:1
      resources:
        {{- include "nova-common.resources" (dict "resources" .Values.resources "key" "web.resources") | nindent 8 }}
""",
    "pvc.yaml": """apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  {{- with include "nova-common.storageClass" (dict "ctx" $ "persistence" .Values.persistence) }}{{ . | nindent 2 }}{{ end }}
  accessModes: [ReadWriteOnce]
""",
}
PROBE_VALUES = {
    "base": "a" * 70,
    "typo": "usr-service",
    "known": ["auth-service", "user-service", "search-service"],
    "image": {"registry": "docker.io", "repository": "library/redis", "tag": "7.2", "digest": ""},
    "defaultTag": "",
    "mode": "soft",
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
    "persistence": {"storageClass": ""},
    "imagePullSecrets": ["one", {"name": "two"}, "one"],
    "global": {"imageRegistry": "", "storageClass": "", "labels": {"team": "core"}},
}


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tmp/probe: a chart depending on nova-common through charts/nova-common -> the repository's library."""
    chart = tmp_path_factory.mktemp("library") / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "charts").mkdir()
    (chart / "charts" / "nova-common").symlink_to(LIBRARY)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "probe", "version": "0.1.0", "appVersion": "1.0",
        "dependencies": [{"name": "nova-common", "version": ">=0.1.0-0", "repository": "file://../nova-common"}],
    }))
    (chart / "values.yaml").write_text(yaml.safe_dump(PROBE_VALUES))
    for name, text in PROBE_TEMPLATES.items():
        (chart / "templates" / name).write_text(text)
    return chart


def probe(chart: Path, major: int, *set_values: str) -> dict[str, dict[str, Any]]:
    objs = helm.render(chart, set_values=list(set_values), helm=helm_path(major), build_dependencies=False)
    return {o.name: o.obj for o in objs}


def probe_error(chart: Path, major: int, *set_values: str) -> str:
    with pytest.raises(helm.HelmError) as err:
        helm.render(chart, set_values=list(set_values), helm=helm_path(major), build_dependencies=False)
    return str(err.value)


# ---------------------------------------------------------------- the library on its own


def test_the_library_is_a_library_chart_that_helm_refuses_to_render_alone() -> None:
    meta = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())
    assert meta["type"] == "library" and helm.is_library(LIBRARY)
    with pytest.raises(helm.HelmError, match="library charts are not installable"):
        helm.render(LIBRARY)


def test_every_library_define_starts_with_a_usage_comment() -> None:
    for tpl in sorted((LIBRARY / "templates").glob("_*.tpl")):
        text = tpl.read_text()
        defines = re.findall(r'\{\{- define "([^"]+)" -\}\}', text)
        assert defines, tpl
        for name in defines:
            assert name.startswith("nova-common."), (tpl.name, name)
            before = text[: text.index(f'define "{name}"')]
            comment = before[before.rindex("{{/*"):]
            assert "Usage:" in comment and f'"{name}"' in comment, (tpl.name, name)


def test_suffixed_names_keep_the_suffix_within_63_characters(probe_chart: Path, helm_major: int) -> None:
    data = probe(probe_chart, helm_major)["names"]["data"]
    assert data["suffixed"] == "a" * 54 + "-headless" and len(data["suffixed"]) == 63
    assert data["trunc"] == "a" * 63


def test_nearest_name_is_the_closest_known_service(probe_chart: Path, helm_major: int) -> None:
    assert probe(probe_chart, helm_major)["names"]["data"]["nearest"] == "user-service"
    assert probe(probe_chart, helm_major, "typo=serch-service")["names"]["data"]["nearest"] == "search-service"


@pytest.mark.parametrize("set_values,ref", [
    ((), "docker.io/library/redis:7.2"),
    (("global.imageRegistry=mirror.local",), "mirror.local/library/redis:7.2"),
    (("image.digest=sha256:" + "a" * 64,), "docker.io/library/redis@sha256:" + "a" * 64),
    (("image.registry=", "image.tag=", "defaultTag=1.0"), "library/redis:1.0"),
])
def test_image_reference_takes_global_registry_digest_and_default_tag(probe_chart: Path, helm_major: int,
                                                                      set_values: tuple[str, ...], ref: str) -> None:
    assert probe(probe_chart, helm_major, *set_values)["image"]["data"]["ref"] == ref


@pytest.mark.helm3
def test_image_with_neither_tag_nor_digest_fails_naming_the_key(probe_chart: Path, helm_major: int) -> None:
    message = probe_error(probe_chart, helm_major, "image.tag=")
    assert "image.tag and image.digest are both empty: pin one of them" in message
    assert "repository is empty" in probe_error(probe_chart, helm_major, "image.repository=")


def test_labels_pull_secrets_and_soft_anti_affinity(probe_chart: Path, helm_major: int) -> None:
    pod = probe(probe_chart, helm_major)["pod"]
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/name": "probe", "app.kubernetes.io/instance": "nova", "app.kubernetes.io/component": "web",
        "app.kubernetes.io/version": "1.0", "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/part-of": "nova",
        "helm.sh/chart": "probe-0.1.0", "team": "core",
    }
    assert pod["spec"]["imagePullSecrets"] == [{"name": "one"}, {"name": "two"}]
    term = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["weight"] == 100 and term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {"app": "x"}


@pytest.mark.helm3
def test_hard_none_and_unknown_anti_affinity(probe_chart: Path, helm_major: int) -> None:
    hard = probe(probe_chart, helm_major, "mode=hard")["pod"]["spec"]["affinity"]["podAntiAffinity"]
    assert list(hard) == ["requiredDuringSchedulingIgnoredDuringExecution"]
    assert "affinity" not in probe(probe_chart, helm_major, "mode=none")["pod"]["spec"]
    assert "podAntiAffinity=always: use soft, hard or none" in probe_error(probe_chart, helm_major, "mode=always")


@pytest.mark.parametrize("set_values,expected", [
    ((), None),
    (("persistence.storageClass=fast",), "fast"),
    (("global.storageClass=-",), ""),
    (("global.storageClass=slow", "persistence.storageClass=-"), ""),
])
def test_storage_class_dash_means_empty_string(probe_chart: Path, helm_major: int, set_values: tuple[str, ...],
                                               expected: str | None) -> None:
    spec = probe(probe_chart, helm_major, *set_values)["data"]["spec"]
    assert spec.get("storageClassName", None) == expected and (expected is not None) == ("storageClassName" in spec)


@pytest.mark.parametrize("set_values,message", [
    (("resources.requests.cpu=1500m",), "web.resources: requests.cpu=1500m is above limits.cpu=1"),
    (("resources.requests.memory=1Gi",), "web.resources: requests.memory=1Gi is above limits.memory=128Mi"),
    (("resources.requests.cpu=2", "resources.limits.cpu=1.5"), "requests.cpu=2 is above limits.cpu=1.5"),
])
@pytest.mark.helm3
def test_requests_above_limits_fail_naming_the_key(probe_chart: Path, helm_major: int, set_values: tuple[str, ...],
                                                   message: str) -> None:
    assert message in probe_error(probe_chart, helm_major, *set_values)


@pytest.mark.parametrize("set_values", [
    ("resources.requests.cpu=1000m",),                                   # equal, other spelling
    ("resources.requests.cpu=1100m", "resources.limits.cpu=1.1"),       # equal within float rounding
    ("resources.requests.memory=128Mi",),
    ("resources.limits=null",),                                          # nothing to compare
    ("resources.requests.cpu=lots",),                                    # not quantities: left to the schema
    ("resources.requests.memory=1 Gi",),
])
def test_requests_up_to_the_limit_pass(probe_chart: Path, helm_major: int, set_values: tuple[str, ...]) -> None:
    assert probe(probe_chart, helm_major, *set_values)["pod"]["spec"]["containers"][0]["resources"]["requests"]


# ---------------------------------------------------------------- wiring into the three charts


@pytest.mark.parametrize("chart", USERS)
def test_each_chart_depends_on_the_library_through_a_relative_symlink(chart: str) -> None:
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
    deps = {d["name"]: d for d in meta["dependencies"]}
    assert deps["nova-common"]["repository"] == "file://../nova-common"
    link = CHARTS / chart / "charts" / "nova-common"
    assert link.is_symlink() and str(link.readlink()) == "../../nova-common" and link.resolve() == LIBRARY


@pytest.mark.parametrize("chart", USERS)
def test_no_helpers_file_over_250_lines_and_every_define_documented(chart: str) -> None:
    for tpl in sorted((CHARTS / chart / "templates").rglob("_*.tpl")):
        text = tpl.read_text()
        assert len(text.splitlines()) <= 250, f"{tpl} has {len(text.splitlines())} lines"
        for name in re.findall(r'\{\{- define "([^"]+)" -\}\}', text):
            before = text[: text.index(f'define "{name}"')]
            assert "Usage:" in before[before.rindex("{{/*"):], (tpl, name)


def test_the_service_merge_runs_once_per_template() -> None:
    templates = (CHARTS / "nova" / "templates")
    for tpl in sorted([*templates.rglob("*.yaml"), templates / "NOTES.txt"]):
        text = tpl.read_text()
        assert text.count('include "nova.services"') <= 1, tpl
        assert 'include "nova.service.config"' not in text, f"{tpl}: merge per service (use nova.services once)"


@pytest.mark.helm3
def test_packaged_charts_bundle_the_library_and_render(tmp_path: Path, helm_major: int) -> None:
    subprocess.run([helm_path(4), "package", str(CHARTS / "nova"), "-d", str(tmp_path)], check=True,
                   capture_output=True)
    (tgz,) = tmp_path.glob("nova-*.tgz")
    listing = subprocess.run(["tar", "tzf", str(tgz)], check=True, capture_output=True, text=True).stdout.split()
    for inner in ("nova/charts/nova-common/Chart.yaml", "nova/charts/nova-redis/charts/nova-common/Chart.yaml",
                  "nova/charts/nova-postgres/charts/nova-common/templates/_images.tpl"):
        assert inner in listing
    objs = helm.parse_manifests(helm.run(helm.template_args(tgz), helm=helm_path(helm_major)))
    assert {"Deployment", "StatefulSet", "Job"} <= {o.kind for o in objs}


def test_tools_lint_says_a_library_chart_has_nothing_to_lint(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.lint.__main__ import main

    assert main(["--chart", str(LIBRARY)]) == 0
    out, err = capsys.readouterr()
    assert "library chart renders nothing" in err and "no findings" not in out


# ---------------------------------------------------------------- fixes the library brought


def storage_classes(objs: list[KubeObject]) -> dict[str, Any]:
    return {f"{o.name}/{t['metadata']['name']}": t["spec"].get("storageClassName", "<unset>")
            for o in objs if o.kind == "StatefulSet" for t in o.obj["spec"].get("volumeClaimTemplates", [])}


@pytest.mark.parametrize("chart", ["nova-redis", "nova-postgres"])
def test_global_storage_class_dash_renders_empty_string_in_every_claim(chart: str, helm_major: int) -> None:
    classes = storage_classes(render(CHARTS / chart, set_values=["global.storageClass=-"], major=helm_major))
    assert classes and set(classes.values()) == {""}, classes


def test_global_storage_class_dash_reaches_every_subchart_claim_of_the_umbrella(helm_major: int) -> None:
    classes = storage_classes(render(CHARTS / "nova", set_values=["global.storageClass=-"], major=helm_major))
    assert len(classes) == 3 and set(classes.values()) == {""}, classes  # redis, postgres, etcd


@pytest.mark.parametrize("set_value,key", [("image.tag=", "image"), ("etcd.image.tag=", "etcd.image")])
@pytest.mark.helm3
def test_postgres_empty_image_tag_fails_naming_the_key_not_with_a_yaml_error(helm_major: int, set_value: str,
                                                                             key: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(CHARTS / "nova-postgres", set_values=[set_value], major=helm_major)
    assert f"{key}.tag and {key}.digest are both empty: pin one of them" in str(err.value)
    assert "YAML parse error" not in str(err.value)


# ---------------------------------------------------------------- issue 10.4: bad input stopped at render


@pytest.mark.parametrize("chart,set_values,message", [
    ("nova", ["services.microservices.user-service.resources.requests.cpu=3"],
     "services.microservices.user-service.resources: requests.cpu=3 is above limits.cpu=2000m"),
    ("nova", ["services.defaults.resources.requests.memory=1Gi"],
     "services.microservices.auth-service.resources: requests.memory=1Gi is above limits.memory=512Mi"),
    ("nova", ["toolsResources.requests.cpu=200m"], "toolsResources: requests.cpu=200m is above limits.cpu=100m"),
    ("nova-redis", ["redis.resources.requests.memory=1Gi"],
     "redis.resources: requests.memory=1Gi is above limits.memory=512Mi"),
    ("nova-redis", ["sentinel.resources.requests.cpu=1"], "sentinel.resources: requests.cpu=1 is above limits.cpu=200m"),
    ("nova-postgres", ["etcd.resources.requests.cpu=1"], "etcd.resources: requests.cpu=1 is above limits.cpu=500m"),
    ("nova-postgres", ["bootstrap.resources.requests.memory=256Mi"],
     "bootstrap.resources: requests.memory=256Mi is above limits.memory=128Mi"),
    ("nova", ["postgres.resources.requests.cpu=2"], "resources: requests.cpu=2 is above limits.cpu=1000m"),
])
@pytest.mark.helm3
def test_requests_above_limits_are_refused_at_render_naming_the_key(helm_major: int, chart: str,
                                                                    set_values: list[str], message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(CHARTS / chart, set_values=set_values, major=helm_major)
    assert message in str(err.value)


@pytest.mark.helm3
def test_a_misspelt_service_fails_with_the_path_and_the_nearest_name(helm_major: int) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(CHARTS / "nova", set_values=["services.microservices.usr-service.enabled=false"], major=helm_major)
    assert ("services.microservices.usr-service is not one of the chart's services (did you mean user-service?)"
            in str(err.value))


def test_a_complete_new_service_is_deployed_next_to_the_others(helm_major: int) -> None:
    objs = render(CHARTS / "nova", set_values=[
        "services.microservices.payments-service.port=8090",
        "services.microservices.payments-service.image.repository=acme/payments",
        "services.microservices.payments-service.database.enabled=false",
    ], major=helm_major)
    deployments = {o.name: o.obj for o in objs if o.kind == "Deployment" and o.source == "nova/templates/services/deployment.yaml"}
    assert set(deployments) == {f"nova-{s}" for s in (
        "auth-service", "messaging-service", "search-service", "streaming-api", "user-service", "payments-service")}
    main = deployments["nova-payments-service"]["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "ghcr.io/acme/payments:0.2.0" and main["ports"][0]["containerPort"] == 8090


def test_the_known_service_list_is_the_values_files_services() -> None:
    values = yaml.safe_load((CHARTS / "nova" / "values.yaml").read_text())
    text = (CHARTS / "nova" / "templates" / "_validate.tpl").read_text()
    block = text[text.index('define "nova.service.known"'):]
    listed = re.findall(r'"([a-z-]+)"', block[: block.index("{{- end -}}")])
    assert sorted(listed) == sorted(values["services"]["microservices"])


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    pod = spec if obj["kind"] == "Pod" else (spec.get("template") or {}).get("spec") or {}
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


PROFILES = [(chart, profile) for chart in USERS for profile in [None, *chart_files.profiles(CHARTS / chart)]]


@pytest.mark.parametrize("chart,profile", PROFILES,
                         ids=[f"{c}:{p.name if p else 'defaults'}" for c, p in PROFILES])
def test_every_container_has_a_cpu_and_a_memory_limit(chart: str, profile: Path | None) -> None:
    missing = [f"{o.kind}/{o.name} {c['name']}: {c.get('resources', {}).get('limits')}"
               for o in render(CHARTS / chart, chart_files.profile_values(profile) if profile else [])
               for c in _containers(o.obj)
               if not {"cpu", "memory"} <= set((c.get("resources") or {}).get("limits") or {})]
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------- bench/render.py


def _bench(*args: str) -> tuple[int, list[str]]:
    proc = subprocess.run([str(helm.REPO_ROOT / ".venv" / "bin" / "python"), "bench/render.py", *args],
                          cwd=helm.REPO_ROOT, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout.strip().splitlines()


def test_render_bench_ends_with_one_json_line_of_medians() -> None:
    import json

    code, lines = _bench("--runs", "1")
    result = json.loads(lines[-1])
    assert code == 0 and result["bench"] == "render" and result["runs"] == 1
    assert result["umbrella_s"] > 0 and result["subchart_s"] > 0 and result["goal_s"] == 0.25
    assert result["goal_met"] == (result["umbrella_s"] < 0.25)


def test_render_bench_reports_a_failing_helm_as_its_json_line(tmp_path: Path) -> None:
    import json

    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho 'v4.0.0'; [ \"$1\" = version ] || { echo broken >&2; exit 1; }\n")
    fake.chmod(0o755)
    code, lines = _bench("--runs", "1", "--helm", str(fake))
    result = json.loads(lines[-1])
    assert code == 2 and result["bench"] == "render" and "umbrella: helm template" in result["error"]


def test_ct_install_leaves_the_library_chart_out_and_ct_lint_keeps_it() -> None:
    workflow = yaml.safe_load((helm.REPO_ROOT / ".github" / "workflows" / "install.yaml").read_text())
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", [])]
    (install,) = [r for r in runs if r.startswith("ct install")]
    assert "--excluded-charts nova-common" in install
    ct = yaml.safe_load((helm.REPO_ROOT / "ct.yaml").read_text())
    assert "nova-common" not in (ct.get("excluded-charts") or [])
