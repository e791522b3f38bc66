"""The services receive the resilience settings (timeouts, pool, breaker, retries) as environment."""

from __future__ import annotations

import pytest

from tests.cluster.support import Nova, reaches

pytestmark = pytest.mark.cluster

RESILIENCE = ("HTTP_REQUEST_TIMEOUT", "HTTP_CONNECT_TIMEOUT", "HTTP_POOL_SIZE", "CIRCUIT_BREAKER_FAILURE_RATE",
              "RETRY_ATTEMPTS", "RETRY_BACKOFF")


def rendered_env(nova: Nova, namespace: str, container: dict) -> dict[str, str]:
    """The env a container should see, resolved from the rendered ConfigMaps (literal values win)."""
    configmaps = {(o.namespace or nova.namespace, o.name): o.obj.get("data") or {} for o in nova.rendered("ConfigMap")}
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        if ref:
            data = configmaps.get((namespace, ref["name"]), {})
            env.update({f"{src.get('prefix', '')}{k}": str(v) for k, v in data.items()})
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref and ref["key"] in configmaps.get((namespace, ref["name"]), {}):
            env[e["name"]] = str(configmaps[(namespace, ref["name"])][ref["key"]])
    return env


@reaches()  # the API server only (kubectl get/exec, helm)
def test_every_service_pod_sees_the_resilience_settings(nova: Nova) -> None:
    services = nova.inv.phase("services")
    assert services, "no service Deployments in the render"
    for w in services:
        container = w.spec["template"]["spec"]["containers"][0]
        expected = rendered_env(nova, w.namespace, container)
        missing = [k for k in RESILIENCE if k not in expected]
        assert not missing, f"{w.name}: the chart does not give {missing} to container {container['name']}"
        pods = nova.running_pods(w)
        assert pods, f"{w.namespace}/{w.name} has no ready pod"
        out = nova.kubectl("exec", "-n", w.namespace, pods[0]["metadata"]["name"], "-c", container["name"], "--", "env")
        seen = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert {k: seen.get(k) for k in RESILIENCE} == {k: expected[k] for k in RESILIENCE}, w.name
