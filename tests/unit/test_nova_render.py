"""charts/nova renders the same objects with helm 3 and helm 4 for every profile, and `helm install
--dry-run=client` (the install path, NOTES.txt included) succeeds with helm 4 for every profile."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHARTS, helm_path, render
from tools import helm

CHART = CHARTS / "nova"
PROFILES = list(helm.profiles(CHART))
PROFILE_IDS = [p.name for p in PROFILES]
KUBE_VERSION = "1.31.0"

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


def keyed(objs: list[helm.RenderedObject]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for o in objs:
        assert o.ref not in out, f"{o.ref} rendered twice"
        out[o.ref] = (o.source, normalise(o.obj))
    return out


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
def test_helm_3_and_helm_4_render_the_same_objects(profile: Path) -> None:
    four = keyed(render(CHART, [profile], major=4, kube_version=KUBE_VERSION))
    three = keyed(render(CHART, [profile], major=3, kube_version=KUBE_VERSION))
    assert sorted(four) == sorted(three)
    for ref in four:
        assert four[ref] == three[ref], f"{ref} differs between helm 4 and helm 3"


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
    out = helm.run(["install", "nova", str(CHART), "-f", str(profile), "--dry-run=client",
                    "--namespace", "nova-install-test"], helm=helm_path(4), context=f"profile {profile}")
    assert "STATUS: pending-install" in out
    notes = out.split("NOTES:", 1)[1]
    assert "helm test nova -n nova-install-test" in notes
    assert "user-service" in notes and "http://nova-user-service." in notes


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize("kube", ["1.29.0", "1.33.0"])
def test_every_object_of_every_profile_is_valid_for_the_supported_kubernetes_versions(profile: Path, kube: str) -> None:
    """Strict OpenAPI validation (kubernetes-validate): unknown fields and wrong types are errors."""
    import kubernetes_validate

    problems = []
    for o in render(CHART, [profile], major=4, kube_version=KUBE_VERSION):
        try:
            kubernetes_validate.validate(o.obj, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{o.ref} ({o.source}): {exc.message}")
    assert not problems, "\n".join(problems)
