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

import contextlib
import fcntl
import fnmatch
import hashlib
import marshal
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import charts as chart_files
from tools import manifest
from tools.manifest import KubeObject

REPO_ROOT = chart_files.REPO_ROOT
CHARTS_DIR = chart_files.CHARTS_DIR
VALUES_DIR = chart_files.VALUES_DIR


# helm 3 and 4 note each symlinked subchart on stderr; that is how local dependencies are held here, so the
# notice is left out of error messages.
SYMLINK_NOTICE = "found symbolic link in path"


class HelmError(Exception):
    """helm failed or could not be found. ``str()`` is a message fit for a user (one line or helm's own text)."""


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


# helm is a Go program that lives for a fraction of a second: its garbage collector costs about 20% of a
# render's CPU (bench/render.py: umbrella_cpu_s against umbrella_tools_cpu_s) for memory the process returns at
# exit anyway. Collect only near a 512 MiB heap instead (a production render of the umbrella peaks near 170 MB).
# A GOGC or GOMEMLIMIT of the caller's own environment wins.
GO_RUNTIME = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}


def run(args: Sequence[str], *, helm: str | None = None, context: str = "", cwd: Path | None = None) -> str:
    """Run helm with ``args`` and return stdout; on failure raise HelmError with helm's stderr verbatim."""
    binary = helm or find_helm()
    try:
        proc = subprocess.run(
            [binary, *args], capture_output=True, text=True, cwd=cwd, check=False,
            env={**GO_RUNTIME, **os.environ, "HELM_DIFF_IGNORE_UNKNOWN_FLAGS": "true"},
        )
    except OSError as exc:
        raise HelmError(f"cannot run {binary}: {exc}") from exc
    if proc.returncode != 0:
        where = f" ({context})" if context else ""
        # helm lint reports its findings on stdout as [ERROR]/[WARNING] lines: keep those too.
        findings = [ln for ln in proc.stdout.splitlines() if ln.lstrip().startswith(("[ERROR]", "[WARNING]"))]
        stderr = [ln for ln in proc.stderr.splitlines() if SYMLINK_NOTICE not in ln]
        detail = "\n".join([*findings, *stderr]).strip()
        raise HelmError(f"helm {' '.join(args[:1])} failed{where}:\n{detail}")
    return proc.stdout


@dataclass(frozen=True)
class LocalDependency:
    """A ``file://`` dependency of a chart: its name, the chart directory it points at, and whether the
    parent holds it as a symlink ``charts/<name> -> <that directory>`` (then helm reads the live sources and
    nothing needs building)."""

    name: str
    source: Path
    linked: bool


def _local_dependencies(chart: Path) -> list[Path]:
    return [d.source for d in local_dependencies(chart)]


def local_dependencies(chart: Path) -> list[LocalDependency]:
    """The chart's ``file://`` dependencies (tools.charts reads Chart.yaml). Raises HelmError for one that
    is not a chart, or whose ``charts/<name>`` entry is neither absent nor a symlink to it (a copied
    directory would go stale)."""
    try:
        entries = chart_files.read(chart).dependencies
    except chart_files.ChartFileError as exc:
        raise HelmError(str(exc)) from None
    deps = []
    for entry in entries:
        if not entry.repository.startswith("file://"):
            continue
        dep = (chart / entry.repository[len("file://"):]).resolve()
        if not (dep / "Chart.yaml").is_file():
            raise HelmError(
                f"{chart / 'Chart.yaml'}: dependency {entry.name!r} points at {entry.repository}, "
                f"which is not a chart (no {dep / 'Chart.yaml'})"
            )
        deps.append(LocalDependency(entry.name, dep, _is_link_to(chart, entry.name, dep)))
    return deps


def _is_link_to(chart: Path, name: str, dep: Path) -> bool:
    entry = chart / "charts" / name
    if not entry.is_symlink() and not entry.exists():
        return False
    link = os.path.relpath(dep, entry.parent)
    fix = f"`ln -sfn {link} {entry}`"
    if not entry.is_symlink():
        raise HelmError(
            f"{entry}: dependency {name!r} must be a symlink to {dep}, not a copy (which goes stale): "
            f"remove it and run {fix} (on a checkout without symlinks: `git config core.symlinks true` "
            "and check out again)"
        )
    if entry.resolve() != dep:
        raise HelmError(f"{entry} points at {entry.resolve()}, but Chart.yaml's file:// repository is {dep}: run {fix}")
    return True


def stray_packages(chart: Path) -> list[Path]:
    """``charts/<name>-*.tgz`` copies of symlinked dependencies (``helm dependency build`` writes them next
    to the links) that the chart's .helmignore does not hide: with both a link and a package helm renders
    either one, at random, so a changed subchart could render stale."""
    stray = []
    for dep in local_dependencies(chart):
        if dep.linked:
            stray += [p for p in sorted((chart / "charts").glob(f"{dep.name}-*.tgz"))
                      if not helmignored(chart, p.relative_to(chart).as_posix())]
    return stray


def helmignored(chart: Path, rel: str) -> bool:
    """Whether ``rel`` (a file path relative to the chart) is excluded by the chart's .helmignore: the
    subset of helm's rules this project uses (globs; a ``/`` anchors to the chart root; ``!`` negates;
    the last matching line wins)."""
    ignore = chart / ".helmignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    ignored = False
    for raw in lines:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#") or pattern.endswith("/"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/")
        target = rel if "/" in pattern else rel.rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(target, pattern):
            ignored = not negate
    return ignored


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


def dependency_build(chart: Path | str, *, helm: str | None = None) -> None:
    """Make the chart's file:// dependencies renderable and current.

    A dependency held as a symlink ``charts/<name> -> ../../<name>`` (how this repository ships them, so a
    fresh clone renders with no step) needs nothing: helm reads the live sources. A packaged copy of it next
    to the link that .helmignore does not hide is refused, as helm would pick either one at random. Other
    file:// dependencies get ``helm dependency build`` when they changed since the last build."""
    _dependency_build(Path(chart).resolve(), helm)


def _dependency_build(chart: Path, helm: str | None) -> tuple[str, bool] | None:
    """:func:`dependency_build` of a resolved chart path; returns the chart's :func:`_tree_stat` when it left
    the tree as it found it (so a render need not walk the tree again), None after a ``helm dependency
    build``."""
    tree = _tree_stat(chart)
    stat_digest, settled = tree
    if (str(chart), stat_digest) in _dependencies_checked:
        return tree
    deps = local_dependencies(chart)
    if not deps:
        return tree
    for dep in deps:
        _dependency_build(dep.source.resolve(), helm)
    lock = chart / "Chart.lock"
    stale = stale_lock_entries(chart)
    if stale:
        raise HelmError(
            f"{lock} is out of date ({'; '.join(stale)}): run `helm dependency update {chart}` and commit "
            "the new Chart.lock"
        )
    stray = stray_packages(chart)
    if stray:
        names = ", ".join(p.name for p in stray)
        raise HelmError(
            f"{chart / 'charts'}: {names} next to the symlinked dependenc{'y' if len(stray) == 1 else 'ies'}: helm "
            f"would render the package or the live chart at random (stale after a change): add `charts/*.tgz` "
            f"to {chart / '.helmignore'}, or delete {'it' if len(stray) == 1 else 'them'}"
        )
    packaged = [d for d in deps if not d.linked]
    if not packaged:
        if settled:  # everything it depends on is in the tree (linked): the same tree passes the same checks
            _dependencies_checked.add((str(chart), stat_digest))
        return tree
    built = list((chart / "charts").glob("*.tgz")) if (chart / "charts").is_dir() else []
    if built and lock.exists() and len(built) >= len(packaged):
        oldest_build = min(p.stat().st_mtime for p in built)
        newest_src = max([_newest_mtime(d.source) for d in packaged] + [(chart / "Chart.yaml").stat().st_mtime])
        if oldest_build >= newest_src:
            return tree
    run(["dependency", "build", str(chart), "--skip-refresh"], helm=helm, context=f"chart {chart}")
    return None


def parse_manifests(text: str, name: str = "helm template output", namespace: str = "default") -> list[KubeObject]:
    """Objects of a multi-document manifest with their ``# Source:`` template (see tools.manifest)."""
    try:
        return manifest.parse(text, name, namespace)
    except manifest.ManifestError as exc:
        raise HelmError(str(exc)) from None


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
    cache: Path | str | None = None,
    **kwargs: Any,
) -> str:
    """``helm template`` output as text. Raises HelmError naming the chart and values files.

    ``cache`` (or the ``NOVA_RENDER_CACHE`` environment variable) names a directory of renders addressed by
    content (:func:`_render_key`): an identical render is read back instead of run again. Only for callers
    whose result must not depend on a render's random values (generated passwords differ between two real
    renders): the test suite's cached ``render`` and the doc-test's repeated ``python -m tools.lint`` runs.
    :func:`render` also keeps the parsed objects there, only in a directory that is the caller's own
    (:func:`_private`)."""
    return _render_entry(chart, values, set_values, helm=helm, build_dependencies=build_dependencies, cache=cache,
                         **kwargs)[0]


def _render_entry(
    chart: Path | str,
    values: Sequence[Path | str],
    set_values: Sequence[str],
    *,
    helm: str | None,
    build_dependencies: bool,
    cache: Path | str | None,
    **kwargs: Any,
) -> tuple[str, Path | None]:
    """(the render's text, its cache entry or None when no cache is on): :func:`render_text`'s work."""
    chart = Path(chart)
    if not (chart / "Chart.yaml").is_file():
        raise HelmError(f"{chart}: not a chart (no Chart.yaml)")
    for v in values:
        if not Path(v).is_file():
            raise HelmError(f"values file {v} does not exist")
    context = f"chart {chart}" + (f", values {', '.join(map(str, values))}" if values else "")
    tree = _dependency_build(chart.resolve(), helm) if build_dependencies else None
    args = template_args(chart, values, set_values, **kwargs)
    store = Path(cache) if cache else (Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else None)
    if store is None:
        return run(args, helm=helm, context=context), None
    key = _render_key(chart, values, args, helm or find_helm(), tree)
    hit = store / f"{key}.yaml"
    if hit.is_file():
        return hit.read_text(), hit
    with _single_flight(store, key):
        if hit.is_file():  # rendered by whoever held the key before us
            return hit.read_text(), hit
        text = run(args, helm=helm, context=context)
        _write_entry(hit, text.encode())
    return text, hit


@contextlib.contextmanager
def _single_flight(store: Path, key: str) -> Iterator[None]:
    """Hold the key's lock while it renders: a process or thread asking for the same render meanwhile waits,
    then reads the entry instead of running helm too (test workers that start alike often ask for the same
    renders at the same moment). A flock, so it is released when its holder exits, however it ends; a failed
    render writes no entry and the next holder runs helm itself. The small lock files stay in the store."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / f".{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_entry(entry: Path, data: bytes) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.parent / f".{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    partial.write_bytes(data)
    os.replace(partial, entry)  # atomic: a concurrent reader sees the whole entry or none


CACHE_ENV = "NOVA_RENDER_CACHE"


# A chart tree that has not changed is not read and hashed again for every render of it: its content digest
# (and a passed dependency check) is remembered under the stat of every file in it. As in git's "racily clean"
# rule, a tree with a file modified in the last SETTLE_S seconds is always read again: a second write in the same
# clock tick would keep size and mtime.
SETTLE_S = 2.0
_tree_digests: dict[tuple[str, str], str] = {}
_dependencies_checked: set[tuple[str, str]] = set()


def _tree_stat(chart: Path) -> tuple[str, bool]:
    """(a digest of path, size, mtime, inode of every file in the chart tree, links followed; whether the
    newest of them is older than SETTLE_S)."""
    digest = hashlib.sha256()
    newest = 0
    for root, dirs, files in os.walk(chart, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
            digest.update(f"{root}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0".encode())
    return digest.hexdigest(), newest < time.time_ns() - SETTLE_S * 1e9


def _tree_digest(chart: Path, tree: tuple[str, bool] | None = None) -> str:
    """The content digest of a chart tree; ``tree`` is its :func:`_tree_stat` when the caller has just taken it
    (of the same path, ``chart.resolve()`` for :func:`_render_key`)."""
    stat_digest, settled = tree or _tree_stat(chart)
    key = (str(chart), stat_digest)
    if settled and key in _tree_digests:
        return _tree_digests[key]
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(chart, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            digest.update(f"{path.relative_to(chart)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    if settled:
        _tree_digests[key] = digest.hexdigest()
    return digest.hexdigest()


def _render_key(chart: Path, values: Sequence[Path | str], args: Sequence[str], binary: str,
                tree: tuple[str, bool] | None = None) -> str:
    """A content address for one ``helm template``: the bytes of every file helm reads (the chart tree with
    its linked subcharts, each values file), the other arguments, and the helm binary (path, size, mtime).
    Paths are left out, so the same chart in another clone hits the same entry. ``tree``: the
    :func:`_tree_stat` of ``chart.resolve()`` that :func:`_dependency_build` just took, if it changed nothing."""
    digest = hashlib.sha256()
    stat = os.stat(binary)
    digest.update(f"{os.path.realpath(binary)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    digest.update(_tree_digest(chart.resolve(), tree).encode())
    replaced = {str(chart): "<chart>"}
    for i, v in enumerate(values):
        digest.update(hashlib.sha256(Path(v).read_bytes()).digest())
        replaced[str(v)] = f"<values{i}>"
    digest.update("\0".join(replaced.get(a, a) for a in args).encode())
    return digest.hexdigest()


def render(
    chart: Path | str,
    values: Sequence[Path | str] = (),
    set_values: Sequence[str] = (),
    **kwargs: Any,
) -> list[KubeObject]:
    """Render a chart with helm and return its objects (see :func:`render_text` for arguments); objects
    without a namespace land in the render namespace (``effective_namespace``).

    With a cache on, the parsed objects are kept next to the render's text (:func:`_read_objects`): parsing a
    production render of the umbrella takes about 30 ms, reading it back about 2 ms."""
    namespace = kwargs.get("namespace", "default")
    options = {"helm": None, "build_dependencies": True, "cache": None, **kwargs}
    text, entry = _render_entry(chart, values, set_values, **options)
    parsed = entry.with_suffix(".objects") if entry is not None and _private(entry.parent) else None
    objects = _read_objects(parsed, namespace) if parsed is not None else None
    if objects is None:
        objects = parse_manifests(text, f"helm template {chart}", namespace)
        if parsed is not None:
            _write_objects(parsed, objects)
    return objects


# The parsed objects of a cached render are stored with marshal: about 15x faster to read back than the YAML,
# and it keeps exactly the types a render parses to (str, int, float, bool, None, dict and list, int keys
# too). A render whose objects hold anything else (a YAML timestamp is a datetime) is simply parsed each time.
# marshal is not meant for data someone else could have written, so the objects are only read from and written
# to a directory that is the caller's own and that nobody else can write to (the suite's is made by mkdtemp).
def _private(store: Path) -> bool:
    try:
        st = os.stat(store)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _read_objects(entry: Path, namespace: str) -> list[KubeObject] | None:
    try:
        return [KubeObject(obj, source, line, namespace) for obj, source, line in marshal.loads(entry.read_bytes())]
    except (OSError, EOFError, ValueError, TypeError, AttributeError):  # gone, truncated, or not our entry
        return None


def _write_objects(entry: Path, objects: list[KubeObject]) -> None:
    try:
        data = marshal.dumps([(o.obj, o.source, o.line) for o in objects])
    except ValueError:  # a type marshal does not hold
        return
    _write_entry(entry, data)


def is_library(chart: Path | str) -> bool:
    """Whether a chart is a library chart (``type: library``): helpers only, nothing to render or install."""
    try:
        return chart_files.read(chart).is_library
    except chart_files.ChartFileError:
        return False


def version(helm: str | None = None) -> str:
    return run(["version", "--short"], helm=helm).strip()
