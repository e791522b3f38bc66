"""What a generated JWT key pair is, asked of openssl: the key's type and size, and whether a signature made
with the private key verifies with the certificate's public key (what auth-service and the verifiers do)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path


def _openssl(*args: str, stdin: str = "") -> str:
    done = subprocess.run(["openssl", *args], check=False, input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def facts(private_key_pem: str, certificate_pem: str) -> tuple[str, int]:
    """("ec", 256) or ("rsa", 2048) for the private key; fails unless the certificate carries its public key and
    a SHA-256 signature by the key verifies with the certificate."""
    text = _openssl("pkey", "-noout", "-text", stdin=private_key_pem)
    match = re.search(r"Private-Key: \((\d+) bit", text)
    assert match, text[:200]
    kind = "ec" if "ASN1 OID" in text else "rsa"
    public = _openssl("pkey", "-pubout", stdin=private_key_pem)
    assert public == _openssl("x509", "-noout", "-pubkey", stdin=certificate_pem), "the certificate's key differs"
    with tempfile.TemporaryDirectory(prefix="nova-keypair-") as tmp:
        key, pub, data, sig = (Path(tmp) / n for n in ("key.pem", "pub.pem", "data", "sig"))
        key.write_text(private_key_pem)
        pub.write_text(public)
        data.write_text("header.payload")
        _openssl("dgst", "-sha256", "-sign", str(key), "-out", str(sig), str(data))
        assert "Verified OK" in _openssl("dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(data))
    return kind, int(match.group(1))
