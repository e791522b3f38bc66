"""`helm upgrade` with unchanged values rotates nothing: every Secret of the release stays byte-for-byte."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.support import Nova, reaches

pytestmark = pytest.mark.cluster


def snapshot(nova: Nova, secrets: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    out = {}
    for ns, name in secrets:
        live = nova.kubectl_json("get", "secret", name, "-n", ns)
        out[(ns, name)] = (live.get("type"), live.get("data") or {})
    return out


@reaches()  # the API server only (kubectl get/exec, helm)
def test_helm_upgrade_with_unchanged_values_keeps_every_secret_byte_for_byte(nova: Nova, all_ready: None) -> None:
    secrets = sorted({(o.namespace or nova.namespace, o.name) for o in nova.rendered("Secret")})
    assert secrets, "the render has no Secrets"
    before = snapshot(nova, secrets)
    values = [a for v in nova.values for a in ("-f", v)]
    nova.helm("upgrade", nova.release, nova.chart, "--namespace", nova.namespace, *values, "--timeout", "600s")
    after = snapshot(nova, secrets)
    changed = [f"{ns}/{name}" for (ns, name) in secrets if before[(ns, name)] != after[(ns, name)]]
    assert not changed, f"helm upgrade with the same values changed {changed}"
