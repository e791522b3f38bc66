"""Runtime tests: the charts' rendered configuration run by real daemons."""

from __future__ import annotations

import functools
from typing import Any

from tools import manifest


@functools.lru_cache(maxsize=64)
def parsed_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` (libyaml, tools.manifest.load), parsed once per distinct text: the harnesses read
    the rendered patroni.yml and the charts' values.yaml while they poll and at every start (pure-Python PyYAML
    took 40 ms for a values.yaml). Shared between callers: read it, never change it."""
    return manifest.load(text)
