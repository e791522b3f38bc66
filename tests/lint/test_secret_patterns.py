"""The secret detectors' cheap substring tests (tools/lint/rules/_secrets.py) only skip values no pattern could
match: every shape is still found, and on real inputs the guarded detectors say exactly what the bare
patterns say."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, VALUES, render
from tests.lint.cases import FIXTURES
from tools.lint.rules import _secrets

GITHUB = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"  # 36 characters after the prefix
SHAPES = {
    "a private key": "tls.key: |\n  -----BEGIN EC PRIVATE KEY-----\n  MHcCAQEE\n",
    "an AWS access key id": "key=AKIAABCDEFGHIJKLMNOP",
    "a JSON web token": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub3ZhIn0.c2lnbmF0dXJlLXBhcnQ",
    "a GitHub token": f"token {GITHUB} here",
    "a Slack token": "hook: xoxb-1234567890-abcdef",
    "a password in a URL": "DATABASE_URL=postgres://nova:hunter2@db:5432/nova",
}
CONFIG_LINES = ["requirepass s3cr3t", "sentinel auth-pass nova s3cr3t", "Auth-Pass: s3cr3t",
                "export DB_PASSWORD=s3cr3t", "api_token = s3cr3t", "MASTERAUTH s3cr3t", "paſſword: s3cr3t"]


def _bare(text: str) -> str | None:
    return _secrets.secret_in_file(text, prefilter=False)


@pytest.mark.parametrize("what", SHAPES)
def test_every_token_shape_is_still_found(what: str) -> None:
    assert _secrets.secret_in_value(SHAPES[what]) == f"contains {what}"
    assert _secrets.secret_in_file(f"# config\n{SHAPES[what]}\n") == f"contains {what}"


@pytest.mark.parametrize("line", CONFIG_LINES)
def test_every_config_line_spelling_is_still_found(line: str) -> None:
    found = _secrets.secret_in_file(f"# config\n{line}\nport 6379\n")
    assert found is not None and found == _bare(f"# config\n{line}\nport 6379\n")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def test_the_guarded_detectors_agree_with_the_bare_patterns_on_rendered_charts_and_fixtures() -> None:
    texts = [s for o in render(CHARTS / "nova", [VALUES / "production.yaml", VALUES / "examples/production-site.yaml"])
             for s in _strings(o.obj)]
    texts += [s for path in sorted(FIXTURES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
              for s in _strings(doc)]
    texts += list(SHAPES.values()) + CONFIG_LINES
    assert len(texts) > 1000
    found = 0
    for text in texts:
        assert _secrets.secret_in_value(text) == _secrets.secret_in_value(text, prefilter=False), text[:200]
        assert _secrets.secret_in_file(text) == _bare(text), text[:200]
        found += _bare(text) is not None
    assert found >= len(SHAPES) + len(CONFIG_LINES)
