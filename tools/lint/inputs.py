"""Turning input into objects: helm renders (through tools.helm) and manifest files or stdin.

Manifest files are parsed with libyaml (CSafeLoader) when PyYAML has it: on 10,000 objects the
pure-Python loader is the slowest part of a run. Each object keeps its ``# Source:`` template and
the line where its document starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from tools import helm
from tools.lint.model import Obj

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


class InputError(Exception):
    """Unreadable input: ``str()`` is one line naming the file (and line)."""


def _documents(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each YAML document."""
    start, current = 1, []
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r"):
            if current:
                yield start, "\n".join(current)
            start, current = number + 1, []
        else:
            current.append(line)
    if current:
        yield start, "\n".join(current)


def parse_manifests(text: str, name: str, namespace: str = "default") -> list[Obj]:
    """Objects of a multi-document manifest (List kinds unpacked); InputError on bad YAML."""
    objects: list[Obj] = []
    for line, doc in _documents(text):
        source = None
        idx = doc.find(helm.SOURCE_PREFIX)
        if idx != -1 and (idx == 0 or doc[idx - 1] == "\n"):
            source = doc[idx + len(helm.SOURCE_PREFIX):].split("\n", 1)[0].strip()
        try:
            data = yaml.load(doc, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f":{line + mark.line}" if mark is not None else f":{line}"
            raise InputError(f"{name}{at}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise InputError(f"{name}:{line}: document is a {type(data).__name__}, not a Kubernetes object")
        kind = str(data.get("kind") or "")
        if kind.endswith("List") and isinstance(data.get("items"), list):
            objects.extend(Obj(item, source, line, namespace) for item in data["items"] if isinstance(item, dict))
        else:
            objects.append(Obj(data, source, line, namespace))
    return objects


def read_manifests(path: str, stdin_text: str | None = None) -> list[Obj]:
    """Objects of a manifest file, or of stdin when ``path`` is ``-``."""
    if path == "-":
        return parse_manifests(stdin_text or "", "stdin")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_manifests(text, path)


def _dependency_dirs(chart: Path) -> dict[str, Path]:
    """Name -> directory of a chart's file:// dependencies (recursively), to map ``# Source:`` to files."""
    out: dict[str, Path] = {}
    try:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return out
    for dep in meta.get("dependencies") or []:
        repo = str(dep.get("repository", ""))
        if repo.startswith("file://"):
            directory = (chart / repo[len("file://"):]).resolve()
            out[str(dep.get("alias") or dep.get("name"))] = directory
            out.update(_dependency_dirs(directory))
    return out


def template_resolver(chart: Path) -> dict[str, str]:
    """Prefix map from ``# Source:`` chart paths to files: ``nova/charts/nova-redis/`` -> ``charts/nova-redis/``."""
    chart = chart.resolve()
    prefixes = {f"{chart.name}/": chart}
    for name, directory in _dependency_dirs(chart).items():
        prefixes[f"{chart.name}/charts/{name}/"] = directory
    return {prefix: _display(directory) + "/" for prefix, directory in prefixes.items()}


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def map_source(source: str | None, prefixes: dict[str, str]) -> str | None:
    if source is None:
        return None
    for prefix in sorted(prefixes, key=len, reverse=True):
        if source.startswith(prefix):
            return prefixes[prefix] + source[len(prefix):]
    return source


def render_chart(
    chart: Path, values: Sequence[str], set_values: Sequence[str], *, kube_version: str, helm_binary: str | None,
    namespace: str, release: str,
) -> list[Obj]:
    """Render through tools.helm; HelmError propagates (its message names chart and values files)."""
    rendered = helm.render(chart, values, set_values, helm=helm_binary, namespace=namespace, release=release,
                           kube_version=kube_version)
    prefixes = template_resolver(chart)
    return [Obj(o.obj, map_source(o.source, prefixes), None, namespace) for o in rendered]
