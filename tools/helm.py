"""The one place that finds and runs helm.

Everything else in tools/ and tests/ takes the objects this module returns, never file paths:
values -> helm -> objects -> (schema validation, policy rules, runtime tests).

Usage::

    from tools import helm
    objs = helm.render("charts/nova", values=["values/local.yaml"], set_values=["x=1"])
    for o in objs:
        print(o.kind, o.name, o.source)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = REPO_ROOT / "charts"
VALUES_DIR = REPO_ROOT / "values"
SOURCE_PREFIX = "# Source: "
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: several times faster


class HelmError(Exception):
    """helm failed or could not be found. ``str()`` is a message fit for a user (one line or helm's own text)."""


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object from a render, with the template it came from (helm's ``# Source:`` line)."""

    obj: dict[str, Any] = field(hash=False, compare=True)
    source: str | None = None

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        return (self.obj.get("metadata") or {}).get("namespace")

    @property
    def ref(self) -> str:
        """``Kind/namespace/name`` (namespace omitted when unset)."""
        ns = self.namespace
        return f"{self.kind}/{ns}/{self.name}" if ns else f"{self.kind}/{self.name}"

    def __getitem__(self, key: str) -> Any:
        return self.obj[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.obj.get(key, default)


def find_helm(major: int = 4) -> str:
    """Path of the helm binary: ``HELM`` (or ``HELM3`` for major 3) env, then .venv/bin, then PATH."""
    env_name, venv_name = ("HELM", "helm") if major == 4 else ("HELM3", "helm3")
    candidates = [os.environ.get(env_name), str(REPO_ROOT / ".venv" / "bin" / venv_name)]
    for cand in candidates:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    on_path = shutil.which(venv_name) or (shutil.which("helm") if major == 4 else None)
    if on_path:
        return on_path
    raise HelmError(
        f"helm {major} not found: set {env_name}, or run `make setup` to install it as .venv/bin/{venv_name}"
    )


def run(args: Sequence[str], *, helm: str | None = None, context: str = "", cwd: Path | None = None) -> str:
    """Run helm with ``args`` and return stdout; on failure raise HelmError with helm's stderr verbatim."""
    binary = helm or find_helm()
    try:
        proc = subprocess.run(
            [binary, *args], capture_output=True, text=True, cwd=cwd, check=False,
            env={**os.environ, "HELM_DIFF_IGNORE_UNKNOWN_FLAGS": "true"},
        )
    except OSError as exc:
        raise HelmError(f"cannot run {binary}: {exc}") from exc
    if proc.returncode != 0:
        where = f" ({context})" if context else ""
        # helm lint reports its findings on stdout as [ERROR]/[WARNING] lines: keep those too.
        findings = [ln for ln in proc.stdout.splitlines() if ln.lstrip().startswith(("[ERROR]", "[WARNING]"))]
        detail = "\n".join([*findings, proc.stderr.strip()]).strip()
        raise HelmError(f"helm {' '.join(args[:1])} failed{where}:\n{detail}")
    return proc.stdout


def _local_dependencies(chart: Path) -> list[Path]:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    deps = []
    for entry in meta.get("dependencies") or []:
        repo = str(entry.get("repository", ""))
        if repo.startswith("file://"):
            dep = (chart / repo[len("file://"):]).resolve()
            if not (dep / "Chart.yaml").is_file():
                raise HelmError(
                    f"{chart / 'Chart.yaml'}: dependency {entry.get('name')!r} points at {repo}, "
                    f"which is not a chart (no {dep / 'Chart.yaml'})"
                )
            deps.append(dep)
    return deps


def stale_lock_entries(chart: Path) -> list[str]:
    """Local (file://) dependencies whose version in Chart.lock differs from their Chart.yaml."""
    lock = chart / "Chart.lock"
    if not lock.is_file():
        return []
    locked = {d.get("name"): d for d in (yaml.safe_load(lock.read_text()) or {}).get("dependencies") or []}
    stale = []
    for dep in _local_dependencies(chart):
        meta = yaml.safe_load((dep / "Chart.yaml").read_text()) or {}
        entry = locked.get(meta.get("name"))
        if entry is None:
            stale.append(f"{meta.get('name')} is not locked")
        elif str(entry.get("version")) != str(meta.get("version")):
            stale.append(f"{meta.get('name')} locked at {entry.get('version')}, chart is {meta.get('version')}")
    return stale


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        if "charts" in p.relative_to(path).parts[:1] and p.suffix == ".tgz":
            continue
        newest = max(newest, p.stat().st_mtime)
    return newest


def _vendored(chart: Path, dep: Path) -> bool:
    """Whether ``charts/<dep>`` is the dependency's directory itself (a relative symlink to the sibling chart).
    A packaged ``charts/<dep>-*.tgz`` beside it would be loaded too, and could be stale: refuse it."""
    link = chart / "charts" / dep.name
    if not (link.is_dir() and link.resolve() == dep):
        return False
    for tgz in sorted((chart / "charts").glob(f"{dep.name}-[0-9]*.tgz")):
        raise HelmError(f"{tgz} shadows {link} (the chart's own sources): delete {tgz}")
    return True


def dependency_build(chart: Path | str, *, helm: str | None = None) -> None:
    """``helm dependency build`` when a file:// dependency changed since the last build (or never built)."""
    chart = Path(chart).resolve()
    deps = _local_dependencies(chart)
    if not deps:
        return
    for dep in deps:
        dependency_build(dep, helm=helm)
    if all(_vendored(chart, dep) for dep in deps):
        return  # charts/<name> are the sources themselves (relative symlinks): nothing to build, never stale
    lock = chart / "Chart.lock"
    stale = stale_lock_entries(chart)
    if stale:
        raise HelmError(
            f"{lock} is out of date ({'; '.join(stale)}): run `helm dependency update {chart}` and commit "
            "the new Chart.lock"
        )
    built = list((chart / "charts").glob("*.tgz")) if (chart / "charts").is_dir() else []
    if built and lock.exists() and len(built) >= len(deps):
        oldest_build = min(p.stat().st_mtime for p in built)
        newest_src = max([_newest_mtime(d) for d in deps] + [(chart / "Chart.yaml").stat().st_mtime])
        if oldest_build >= newest_src:
            return
    run(["dependency", "build", str(chart), "--skip-refresh"], helm=helm, context=f"chart {chart}")


def parse_manifests(text: str) -> list[RenderedObject]:
    """Split a multi-document manifest into objects, keeping each one's ``# Source:`` template."""
    objects: list[RenderedObject] = []
    for doc in _split_documents(text):
        source = None
        for line in doc.splitlines():
            if line.startswith(SOURCE_PREFIX):
                source = line[len(SOURCE_PREFIX):].strip()
                break
        data = yaml.load(doc, Loader=_Loader)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise HelmError(f"manifest document from {source or 'input'} is not a mapping")
        if data.get("kind", "").endswith("List") and isinstance(data.get("items"), list):
            objects.extend(RenderedObject(item, source) for item in data["items"] if isinstance(item, dict))
        else:
            objects.append(RenderedObject(data, source))
    return objects


def _split_documents(text: str) -> Iterable[str]:
    current: list[str] = []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            if current:
                yield "\n".join(current)
            current = []
        else:
            current.append(line)
    if current:
        yield "\n".join(current)


def template_args(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    *,
    release: str = "nova",
    namespace: str = "default",
    kube_version: str | None = None,
    api_versions: Sequence[str] = (),
    show_only: Sequence[str] = (),
) -> list[str]:
    """The argv (after the helm binary) of ``helm template`` for these inputs."""
    args = ["template", release, str(chart), "--namespace", namespace]
    for v in values:
        args += ["-f", str(v)]
    for s in set_values:
        args += ["--set", s]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    for s in show_only:
        args += ["--show-only", s]
    return args


def render_text(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    *,
    helm: str | None = None,
    build_dependencies: bool = True,
    **kwargs: Any,
) -> str:
    """``helm template`` output as text. Raises HelmError naming the chart and values files."""
    chart = Path(chart)
    if not (chart / "Chart.yaml").is_file():
        raise HelmError(f"{chart}: not a chart (no Chart.yaml)")
    for v in values:
        if not Path(v).is_file():
            raise HelmError(f"values file {v} does not exist")
    context = f"chart {chart}" + (f", values {', '.join(map(str, values))}" if values else "")
    if build_dependencies:
        dependency_build(chart, helm=helm)
    return run(template_args(chart, values, set_values, **kwargs), helm=helm, context=context)


def render(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    **kwargs: Any,
) -> list[RenderedObject]:
    """Render a chart with helm and return its objects (see :func:`render_text` for arguments)."""
    return parse_manifests(render_text(chart, values, set_values, **kwargs))


def charts() -> list[Path]:
    """Every chart under charts/."""
    return sorted(p.parent for p in CHARTS_DIR.glob("*/Chart.yaml"))


def is_library(chart: Path | str) -> bool:
    """Whether a chart is a library chart (``type: library``): helpers only, nothing to render or install."""
    try:
        meta = yaml.safe_load((Path(chart) / "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(meta, dict) and meta.get("type") == "library"


def profiles(chart: Path) -> list[Path]:
    """The values profiles that apply to a chart: values/*.yaml for the umbrella, the chart's ci/*.yaml
    (chart-testing installs those on Kind) and ci/render/*.yaml (render-only scenarios, for instance ones
    that need Secrets or hosts created outside the chart: linted and tested, never installed by ct)."""
    found = sorted((chart / "ci").glob("*.yaml")) + sorted((chart / "ci" / "render").glob("*.yaml"))
    if chart.name == "nova":
        found = sorted(VALUES_DIR.glob("*.yaml")) + found
    return found


def version(helm: str | None = None) -> str:
    return run(["version", "--short"], helm=helm).strip()
