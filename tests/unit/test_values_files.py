"""Every values file of the repository is a YAML mapping without duplicate keys.

YAML (and helm) keep the last of two equal keys without a word: a second top-level `global:` in a profile once
dropped every setting of the first (monitoring went off in production). This catches that at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

FILES = sorted({*ROOT.glob("values/*.yaml"), *ROOT.glob("charts/*/values.yaml"), *ROOT.glob("charts/*/ci/*.yaml"),
                *ROOT.glob("charts/*/ci/*/*.yaml")})


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def test_there_are_values_files() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_values_file_has_no_duplicate_keys(path: Path) -> None:
    data = yaml.load(path.read_text(), Loader=_StrictLoader)
    assert data is None or isinstance(data, dict)


def test_the_check_catches_a_duplicate_key() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'global'"):
        yaml.load("global: {a: 1}\nx: 2\nglobal: {b: 2}\n", Loader=_StrictLoader)
