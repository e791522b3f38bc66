"""charts/nova renders the same objects with helm 3 and helm 4 for every profile, and `helm install
--dry-run=client` (the install path, NOTES.txt included) succeeds with helm 4 for every profile."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHARTS, helm_path, render
from tools import charts, helm, kube_versions
from tools.lint.schema import schemas_for
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
PROFILES = charts.profiles(CHART)
PROFILE_IDS = [p.name for p in PROFILES]
# The helm 3 / helm 4 comparison renders for the newest supported version (the same renders the schema
# test below validates for it, so they come from the render cache).
KUBE_VERSION = kube_versions.full(kube_versions.supported()[-1])

RANDOM_TOKEN = re.compile(r"[A-Za-z0-9]{32,}")
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\n?", re.DOTALL)


def normalise_text(text: str) -> str:
    return RANDOM_TOKEN.sub("<random>", PEM.sub(r"<pem \1>", text))


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """Replace generated values (passwords, keys) and the helm.sh/chart label, which may legitimately differ."""
    obj = _walk(obj)
    if obj.get("kind") == "ConfigMap":
        # Helm 3 trims the whitespace at the end of every manifest, so a ConfigMap whose last value is a
        # `|` block loses that value's final newline under Helm 3 only; compare values without it.
        obj["data"] = {k: v.rstrip("\n") for k, v in (obj.get("data") or {}).items()}
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            values = obj.get(field) or {}
            for key, value in values.items():
                plain = base64.b64decode(value).decode() if field == "data" else value
                values[key] = normalise_text(plain)
    return obj


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in {"labels", "matchLabels"} and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "helm.sh/chart"}
            if key == "annotations" and isinstance(value, dict):
                # Checksums of rendered Secrets cover generated values.
                value = {k: ("<checksum>" if k.startswith("checksum/") and "secret" in k else v)
                         for k, v in value.items()}
            out[key] = _walk(value)
        return out
    if isinstance(node, list):
        return [_walk(v) for v in node]
    return node


def keyed(objs: list[KubeObject]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for o in objs:
        assert o.ref not in out, f"{o.ref} rendered twice"
        out[o.ref] = (o.source, normalise(o.obj))
    return out


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_helm_3_and_helm_4_render_the_same_objects(profile: Path) -> None:
    four = keyed(render(CHART, charts.profile_values(profile), major=4, kube_version=KUBE_VERSION))
    three = keyed(render(CHART, charts.profile_values(profile), major=3, kube_version=KUBE_VERSION))
    assert sorted(four) == sorted(three)
    for ref in four:
        assert four[ref] == three[ref], f"{ref} differs between helm 4 and helm 3"


# The line of nova.services (charts/nova/templates/_services.tpl) that reads the merge kept for the render.
MERGE_KEPT = '{{- $merged := get .ctx "nova.services.merged" -}}'


@pytest.mark.helm3
def test_every_template_of_a_chart_sees_what_an_earlier_one_set_on_the_root_context(
        helm_major: int, tmp_path: Path) -> None:
    """What nova.services relies on to merge once per render: Helm hands all templates of one chart the same
    root context, so a value set on it by one template is there for the others."""
    chart = tmp_path / "shared"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shared\nversion: 0.1.0\n")
    (chart / "templates" / "_first.tpl").write_text(
        '{{- define "first" -}}{{- if not (hasKey . "first") }}{{ $_ := set . "first" .Template.Name }}{{ end -}}'
        '{{- get . "first" -}}{{- end -}}\n')
    for name in ("a", "b", "c"):
        (chart / "templates" / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            'data:\n  first: {{ include "first" $ | quote }}\n')
    firsts = {o.name: o.obj["data"]["first"] for o in render(chart, major=helm_major)}
    assert sorted(firsts) == ["a", "b", "c"]
    assert len(set(firsts.values())) == 1, firsts
    assert firsts["a"].startswith("shared/templates/"), firsts


@pytest.mark.parametrize("profile", [charts.profile_values("production")[0], CHART / "ci/render/extras-values.yaml"],
                         ids=["production", "extras"])
def test_the_service_merge_kept_for_the_render_gives_what_a_merge_per_template_gives(
        profile: Path, tmp_path: Path) -> None:
    """nova.services keeps its merge on the root context and every template shares it: a template that set
    into a service's settings would change what later templates render. A copy of the charts that merges
    anew on every call must render the same objects."""
    shutil.copytree(CHARTS, tmp_path / "charts", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    helpers = tmp_path / "charts/nova/templates/_services.tpl"
    text = helpers.read_text(encoding="utf-8")
    assert text.count(MERGE_KEPT) == 1, f"{helpers.name} no longer has the line this test replaces"
    helpers.write_text(text.replace(MERGE_KEPT, "{{- $merged := dict -}}"), encoding="utf-8")
    values = charts.profile_values(profile)
    kept = keyed(render(CHART, values))
    fresh = keyed(render(tmp_path / "charts/nova", values))
    assert sorted(kept) == sorted(fresh)
    for ref in kept:
        assert kept[ref][1] == fresh[ref][1], f"{ref} differs when every template merges the services itself"


def test_normalisation_still_sees_a_real_difference() -> None:
    """Guards the comparison above: a changed port is not normalised away."""
    a = keyed(render(CHART, major=4, kube_version=KUBE_VERSION))
    b = keyed(render(CHART, set_values=["services.microservices.auth-service.port=8094"], major=4,
                     kube_version=KUBE_VERSION))
    assert a["Service/default/nova-auth-service"] != b["Service/default/nova-auth-service"]
    assert a["Secret/default/nova-redis-credentials"] == b["Secret/default/nova-redis-credentials"]


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_helm_4_install_dry_run_succeeds_and_prints_the_notes(profile: Path) -> None:
    helm.dependency_build(CHART, helm=helm_path(4))
    out = helm.run(["install", "nova", str(CHART), *(a for f in charts.profile_values(profile) for a in ("-f", str(f))),
                    "--dry-run=client",
                    "--namespace", "nova-install-test"], helm=helm_path(4), context=f"profile {profile}")
    assert "STATUS: pending-install" in out
    notes = out.split("NOTES:", 1)[1]
    assert "helm test nova -n nova-install-test" in notes
    assert "user-service" in notes and "http://nova-user-service." in notes


def schema_problems(objs: list[KubeObject], kube: str) -> list[str]:
    """Strict OpenAPI errors (kubernetes-validate's schemas for ``kube``, through the linter's compiled
    validators, which tests/lint/test_schema.py checks against jsonschema); a kind without a schema is one."""
    schemas = schemas_for(kube)
    problems = []
    for o in objs:
        validate = schemas.validator(o.api_version, o.kind)
        if validate is None:
            problems.append(f"{o.ref} ({o.source}): {o.api_version} {o.kind} has no schema in Kubernetes {kube}")
            continue
        problems += [f"{o.ref} ({o.source}): {path or '(root)'}: {message}" for path, message in validate(o.obj)]
    return problems


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize("kube", kube_versions.supported())
def test_every_object_of_every_profile_is_valid_for_the_kubernetes_version_it_was_rendered_for(
        profile: Path, kube: str) -> None:
    """Rendered for ``kube`` (templates branch on .Capabilities.KubeVersion) and validated against the strict
    schemas of that same version: unknown fields, wrong types and kinds the version does not serve are errors."""
    problems = schema_problems(render(CHART, charts.profile_values(profile), major=4, kube_version=kube_versions.full(kube)), kube)
    assert not problems, "\n".join(problems)


def test_schema_check_sees_a_field_the_version_does_not_have() -> None:
    """Guards the validation above: a pod field unknown to Kubernetes is reported with its path."""
    objs = render(CHART, major=4, kube_version=kube_versions.full(kube_versions.MINIMUM))
    deployment = next(o for o in objs if o.kind == "Deployment")
    broken = KubeObject({**deployment.obj, "spec": {**deployment.obj["spec"], "replicaz": 2}},
                                 deployment.source)
    assert schema_problems([broken], kube_versions.MINIMUM) == [
        f"{broken.ref} ({broken.source}): spec: unknown field 'replicaz'"]
