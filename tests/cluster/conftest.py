"""Cluster tests: against the release `python -m tools.cluster deploy` installed (values/local.yaml).

They use pytest-helm-charts' ``kube_cluster`` fixture (a pykube client for an existing cluster). That
plugin's ``kube_config`` fixture insists on KUBECONFIG or ``--kubeconfig``; we override it here to fall
back to ~/.kube/config (where kind and helm/kind-action write it), and we skip every test of this
directory, with one reason, before any fixture needs a cluster: collecting and running them where no
cluster answers is a clean skip, never an error. In CI they run unmodified after `tools.cluster deploy`.

Environment (set by `python -m tools.cluster test`): NOVA_RELEASE (nova), NOVA_NAMESPACE (nova),
NOVA_VALUES (comma list; values/local.yaml), NOVA_KUBE_CONTEXT (current context), NOVA_CHART (charts/nova).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.support import ClientPod, Nova, wait_all_ready
from tools import helm
from tools.cluster import inventory, plan

ROOT = helm.REPO_ROOT
FIX = "run `make up && make deploy`"


def _kubeconfig(config: pytest.Config) -> str:
    opt = config.getoption("kubeconfig", default=None)
    if opt:
        return str(opt)
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return env.split(os.pathsep)[0]
    return str(Path.home() / ".kube" / "config")


def _probe_cluster(config: pytest.Config) -> tuple[str | None, str]:
    """(reason to skip or None, kubeconfig)."""
    kubeconfig = _kubeconfig(config)
    if shutil.which("kubectl") is None:
        return f"no reachable Kubernetes cluster: {FIX} (kubectl is not installed)", kubeconfig
    if not Path(kubeconfig).is_file():
        return f"no reachable Kubernetes cluster: {FIX} (no kubeconfig at {kubeconfig})", kubeconfig
    ctx = os.environ.get("NOVA_KUBE_CONTEXT")
    argv = ["kubectl", "--kubeconfig", kubeconfig, *(["--context", ctx] if ctx else []),
            "get", "--raw", "/readyz", "--request-timeout=5s"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return f"no reachable Kubernetes cluster: {FIX} (the API server did not answer in 15s)", kubeconfig
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["kubectl failed"])[-1][:200]
        return f"no reachable Kubernetes cluster: {FIX} ({why})", kubeconfig
    return None, kubeconfig


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Report this directory's skips at this file, so the summary shows the one reason once, not per test."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        if "no reachable Kubernetes cluster" in reason or "is not installed in namespace" in reason:
            report.longrepr = (__file__, _probe_cluster.__code__.co_firstlineno - 1, reason)
    return report




@pytest.fixture(scope="session", autouse=True)
def nova(pytestconfig: pytest.Config) -> Nova:
    """Skips every cluster test, with one reason, unless a cluster answers and the release is installed."""
    reason, kubeconfig = _probe_cluster(pytestconfig)
    if reason:
        pytest.skip(reason)
    release = os.environ.get("NOVA_RELEASE", "nova")
    namespace = os.environ.get("NOVA_NAMESPACE", "nova")
    values = [v for v in os.environ.get("NOVA_VALUES", str(ROOT / "values" / "local.yaml")).split(",") if v]
    chart = os.environ.get("NOVA_CHART", str(ROOT / "charts" / "nova"))
    context = os.environ.get("NOVA_KUBE_CONTEXT") or None
    try:
        helm.run(["status", release, "--namespace", namespace, "--kubeconfig", kubeconfig,
                  *(["--kube-context", context] if context else [])])
    except helm.HelmError:
        pytest.skip(f"release {release} is not installed in namespace {namespace}: run `make deploy`")
    objects = helm.render(chart, values, release=release, namespace=namespace)
    return Nova(kubeconfig, context, release, namespace, chart, values, objects,
                inventory.build(objects, release, namespace))


@pytest.fixture(scope="module")
def kube_config(nova: Nova) -> str:
    """Overrides pytest-helm-charts' fixture: KUBECONFIG / --kubeconfig, else ~/.kube/config."""
    return nova.kubeconfig


@pytest.fixture
def all_ready(nova: Nova, kube_cluster: Any) -> Iterator[None]:
    """Each disruptive test starts and ends with every StatefulSet and Deployment ready."""
    wait_all_ready(nova, kube_cluster, timeout=300)
    yield
    wait_all_ready(nova, kube_cluster, timeout=300)


@pytest.fixture(scope="session")
def client(nova: Nova) -> Iterator[ClientPod]:
    """The client pod every in-cluster connection of the tests starts from: the helm test pods' identity,
    which the charts' NetworkPolicies admit to Redis, Sentinel, the write-safe endpoint and PostgreSQL (a
    Redis or PostgreSQL pod is not admitted to the -master Service). Deleted at the end of the session;
    its activeDeadlineSeconds ends it even if this process dies."""
    settings = plan.Settings(release=nova.release, namespace=nova.namespace,
                             client_suffix=f"ct-client-{uuid.uuid4().hex[:6]}")
    c = plan.client(settings, nova.inv)
    if c is None:
        pytest.fail("the render has no helm test pod (tests.enabled=false): no client identity the "
                    "NetworkPolicies admit; install with tests.enabled=true")
    nova.kubectl("apply", "-f", "-", stdin=c.manifest)
    try:
        nova.kubectl("wait", "--for=condition=Ready", f"pod/{c.name}", "-n", c.namespace, "--timeout=180s",
                     timeout=200)
        yield ClientPod(nova, c.name, c.namespace)
    finally:
        nova.kubectl("delete", "pod", c.name, "-n", c.namespace, "--ignore-not-found", "--wait=false", check=False)
