"""Turning input into objects: helm renders (through tools.helm) and manifest files or stdin.

Parsing is tools.manifest's (libyaml, ``# Source:`` templates, document lines, List kinds); chart
layout is tools.charts'. This module only maps helm's ``# Source:`` chart paths back to files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tools import charts, helm, manifest
from tools.lint.model import Obj
from tools.manifest import ManifestError

# Unreadable input: ``str()`` is one line naming the file (and line).
InputError = ManifestError


def parse_manifests(text: str, name: str, namespace: str = "default") -> list[Obj]:
    """Objects of a multi-document manifest (List kinds unpacked); InputError on bad YAML."""
    return manifest.parse(text, name, namespace)


def read_manifests(path: str, stdin_text: str | None = None) -> list[Obj]:
    """Objects of a manifest file, or of stdin when ``path`` is ``-``."""
    return manifest.read(path, stdin_text)


def template_resolver(chart: Path) -> dict[str, str]:
    """Prefix map from ``# Source:`` chart paths to files: ``nova/charts/nova-redis/`` -> ``charts/nova-redis/``."""
    chart = chart.resolve()
    prefixes = {f"{chart.name}/": chart}
    for name, directory in charts.dependency_dirs(chart).items():
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
