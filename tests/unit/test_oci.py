"""Install from a registry: a real OCI registry (Debian's docker-registry) on 127.0.0.1 and a free port,
the packaged charts pushed to it with `python -m tools.package push`, and helm 4 (`install --dry-run=client`)
and helm 3 (`template`) rendering the umbrella from it exactly as they render the working tree.

Helm's registry config, caches and kubeconfig point into a temporary directory: nothing in ~ is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binaries
from tools import helm
from tools.manifest import KubeObject
from tools.package.charts import Chart, discover
from tools.package.cli import main

pytestmark = pytest.mark.runtime  # starts a daemon (the registry)

ROOT = helm.REPO_ROOT
REGISTRY_BIN = "/usr/bin/docker-registry"
REPOSITORY = "nova-charts"
UMBRELLA = "nova"
LOCAL_VALUES = ROOT / "values" / "local.yaml"


@dataclass(frozen=True)
class Published:
    ref: str  # oci://127.0.0.1:<port>/nova-charts
    url: str  # http://127.0.0.1:<port>
    dist: Path
    charts: dict[str, Chart]


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(storage: Path, port: int) -> str:
    """The package's /etc/docker/registry/config.yml, reduced: filesystem storage, HTTP on loopback, no auth."""
    return yaml.safe_dump({
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test-only-upload-secret"},
    })


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def registry(workdir: Path) -> Iterator[str]:
    """A docker-registry serving http://127.0.0.1:<free port>; killed by PID on exit, whatever happened."""
    require_binaries(REGISTRY_BIN)
    log_path = workdir / "registry.log"
    for _attempt in range(5):  # another process may take the free port between bind and listen
        port = _free_port()
        config = workdir / "registry.yml"
        config.write_text(_config(workdir / "storage", port))
        with log_path.open("wb") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while proc.poll() is None and not _answers(url) and time.monotonic() < deadline:
                time.sleep(0.1)
            if proc.poll() is None and _answers(url):
                yield url
                return
            if "address already in use" not in log_path.read_text(errors="replace"):
                raise RuntimeError(f"docker-registry did not answer on {url}: {log_path.read_text()[-2000:]}")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    raise RuntimeError("docker-registry: no free port after 5 attempts")


@pytest.fixture(scope="module")
def published() -> Iterator[Published]:
    """The application charts packaged from the working tree and pushed to a fresh loopback registry."""
    with tempfile.TemporaryDirectory(prefix="nova-oci-") as tmp, pytest.MonkeyPatch.context() as mp:
        work = Path(tmp)
        for var, sub in (("HELM_REGISTRY_CONFIG", "helm/registry.json"), ("HELM_CACHE_HOME", "helm/cache"),
                         ("HELM_CONFIG_HOME", "helm/config"), ("HELM_DATA_HOME", "helm/data"),
                         ("HELM_REPOSITORY_CONFIG", "helm/repositories.yaml"),
                         ("HELM_REPOSITORY_CACHE", "helm/repository"), ("KUBECONFIG", "no-kubeconfig")):
            mp.setenv(var, str(work / sub))
        for var in ("HELM_NAMESPACE", "HELM_KUBECONTEXT"):
            mp.delenv(var, raising=False)
        with registry(work) as url:
            dist = work / "dist"
            assert main(["--out", str(dist)]) == 0
            ref = f"oci://{url.removeprefix('http://')}/{REPOSITORY}"
            assert main(["push", ref, "--dist", str(dist), "--plain-http"]) == 0
            charts = {c.name: c for c in discover(helm.CHARTS_DIR) if not c.library}
            yield Published(ref, url, dist, charts)
    assert not os.path.exists(tmp)


def _helm_output(text: str) -> str:
    """helm prints `Pulled:`/`Digest:` lines before its output when it reads a chart from a registry."""
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith(("Pulled: ", "Digest: ")))


def _normalised(objs: list[KubeObject]) -> dict[str, dict[str, Any]]:
    """Objects by Kind/namespace/name; generated Secret values (random on every render) as a placeholder."""
    out = {}
    for o in objs:
        obj = json.loads(json.dumps(o.obj))
        if o.kind == "Secret":
            for key in ("data", "stringData"):
                obj[key] = {k: "<generated>" for k in obj.get(key) or {}}
        out[o.ref] = obj
    return out


def _working_tree(major: int) -> dict[str, dict[str, Any]]:
    return _normalised(helm.render(ROOT / "charts" / UMBRELLA, [LOCAL_VALUES], helm=helm.find_helm(major),
                                   build_dependencies=False))


def _tags(url: str, name: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/{REPOSITORY}/{name}/tags/list", timeout=5) as resp:
        return list(json.load(resp)["tags"])


def test_every_application_chart_is_pulled_back_byte_for_byte(published: Published, tmp_path: Path) -> None:
    for name, chart in published.charts.items():
        assert _tags(published.url, name) == [chart.version]
        dest = tmp_path / name
        dest.mkdir()
        helm.run(["pull", f"{published.ref}/{name}", "--version", chart.version, "--destination", str(dest),
                  "--plain-http"])
        pulled = (dest / chart.archive).read_bytes()
        assert hashlib.sha256(pulled).hexdigest() == hashlib.sha256(
            (published.dist / chart.archive).read_bytes()).hexdigest()


def test_helm4_install_from_the_registry_renders_what_the_working_tree_renders(published: Published) -> None:
    version = published.charts[UMBRELLA].version
    out = helm.run(["install", "nova", f"{published.ref}/{UMBRELLA}", "--version", version, "-f", str(LOCAL_VALUES),
                    "--dry-run=client", "--plain-http", "-o", "json"], helm=helm.find_helm(4))
    release = json.loads(_helm_output(out))
    assert release["chart"]["metadata"]["version"] == version
    manifests = [release["manifest"], *(h["manifest"] for h in release.get("hooks") or [])]
    installed = _normalised(helm.parse_manifests("\n---\n".join(manifests)))
    assert len(installed) > 50
    assert installed == _working_tree(4)


def test_helm3_template_from_the_registry_renders_what_the_working_tree_renders(published: Published) -> None:
    version = published.charts[UMBRELLA].version
    out = helm.run(["template", "nova", f"{published.ref}/{UMBRELLA}", "--version", version, "-f", str(LOCAL_VALUES),
                    "--plain-http"], helm=helm.find_helm(3))
    rendered = _normalised(helm.parse_manifests(_helm_output(out)))
    assert len(rendered) > 50
    assert rendered == _working_tree(3)


def test_a_published_version_is_not_pushed_again(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    before = {n: _tags(published.url, n) for n in published.charts}
    capsys.readouterr()
    assert main(["push", published.ref, "--dist", str(published.dist), "--plain-http"]) == 0
    out = capsys.readouterr().out
    assert out.count("already published, not overwritten") == len(published.charts), out
    assert {n: _tags(published.url, n) for n in published.charts} == before


def test_registry_is_stopped_when_the_block_ends_even_on_failure(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), registry(tmp_path) as url:
        assert _answers(url)
        1 / 0  # noqa: B018
    assert not _answers(url)
