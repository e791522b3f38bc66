"""The release installed from values/local.yaml is fully up, and its own helm tests pass.

chart-testing only waits for Deployments; here every StatefulSet (Redis, etcd, PostgreSQL) counts too.
"""

from __future__ import annotations

from typing import Any

import pykube
import pytest

from tests.cluster.support import Nova, reaches, wait_all_ready
from tools.cluster.access import DNS, HELM_TEST, Access

pytestmark = pytest.mark.cluster


@reaches()  # the API server only
def test_every_statefulset_and_deployment_of_the_release_is_ready(nova: Nova, kube_cluster: Any) -> None:
    kinds = {w.kind for w in nova.inv.workloads}
    assert kinds == {"StatefulSet", "Deployment"}, f"the render has {kinds}: expected both kinds"
    wait_all_ready(nova, kube_cluster, timeout=600)
    for w in nova.inv.workloads:
        api = pykube.StatefulSet if w.kind == "StatefulSet" else pykube.Deployment
        live = api.objects(kube_cluster.kube_client).filter(namespace=w.namespace).get(name=w.name)
        ready = int(live.obj.get("status", {}).get("readyReplicas", 0))
        assert ready == live.replicas >= 1, f"{w.kind} {w.namespace}/{w.name}: {ready}/{live.replicas} ready"


# The helm test pods check each service's http port, its Redis (write-safe endpoint and Sentinel) and its
# PostgreSQL (primary and replicas) credentials (charts/nova/files/check-*.sh).
@reaches(Access(HELM_TEST, DNS, "dns"), Access(HELM_TEST, "services", "http"),
         Access(HELM_TEST, "redis-master", "redis"), Access(HELM_TEST, "redis-sentinel", "sentinel"),
         Access(HELM_TEST, "postgres-primary", "postgresql"), Access(HELM_TEST, "postgres-replicas", "postgresql"))
def test_helm_test_passes(nova: Nova) -> None:
    out = nova.helm("test", nova.release, "--namespace", nova.namespace, "--timeout", "600s")
    assert "Succeeded" in out, out
