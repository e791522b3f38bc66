"""netutil: per-run loopback blocks, the holder of a taken address, the retry on a failed bind (no daemons)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime import netutil

# /proc/net/tcp and tcp6 lines as the kernel writes them (x86: addresses in host byte order).
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0
   1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0
   2: 0100007F:18EB 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:66CB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0
   1: 0000000000000000FFFF00000A01FE7F:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5252 1 0
"""


@pytest.mark.skipif(sys.byteorder != "little", reason="the sample tables are in little-endian host order")
def test_proc_net_tcp_tables_give_listening_addresses_and_ports_only() -> None:
    assert netutil.parse_proc_net_tcp(TCP) == [netutil.Listener("127.0.0.1", 6379, 4242),
                                               netutil.Listener("0.0.0.0", 5432, 4343)]
    assert netutil.parse_proc_net_tcp(TCP6, v6=True) == [netutil.Listener("::", 26315, 5151),
                                                         netutil.Listener("127.254.1.10", 6379, 5252)]


def test_a_wildcard_listener_blocks_its_port_on_every_address_and_nothing_else() -> None:
    table = netutil.parse_proc_net_tcp(TCP)
    assert [e.inode for e in netutil.blocking("127.0.0.1", 6379, table)] == [4242]
    assert netutil.blocking("127.9.9.1", 6379, table) == []
    assert [e.inode for e in netutil.blocking("127.9.9.1", 5432, table)] == [4343]


def test_two_claims_never_get_the_same_block_and_a_released_block_can_be_claimed_again() -> None:
    first = netutil.claim_block(random.Random(1))
    try:
        # The same random sequence would pick the same block first: the lock makes the second claim move on.
        second = netutil.claim_block(random.Random(1))
        try:
            assert second.prefix != first.prefix
        finally:
            second.release()
    finally:
        first.release()
    assert not first.lock_path.exists(), "a released claim leaves no lock file behind"
    again = netutil.claim_block(random.Random(1))
    try:
        assert again.prefix == first.prefix
    finally:
        again.release()


def test_a_block_someone_listens_in_is_skipped() -> None:
    taken = netutil.claim_block(random.Random(2))
    address = taken.host(7)
    taken.release()  # free for claiming, but a foreign process listens on one of its addresses
    with netutil.bind_listener(address, 0):
        claimed = netutil.claim_block(random.Random(2))
        try:
            assert not claimed.contains(address)
        finally:
            claimed.release()


def test_a_taken_address_is_reported_in_one_line_with_the_pid_and_command_holding_it() -> None:
    block = netutil.claim_block()
    address = block.host(1)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time\n"
        f"s = socket.socket(); s.bind(({address!r}, 0)); s.listen(1)\n"
        "print(s.getsockname()[1], flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(holder.stdout.readline())
        with pytest.raises(netutil.BindError) as caught:
            netutil.bind_listener(address, port)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"cannot bind {address}:{port}: held by pid {holder.pid} ({sys.executable} -c")
        assert f"listening on {address}:{port}" in message and "Address already in use" in message
    finally:
        holder.kill()
        holder.wait()
        block.release()


def test_a_daemon_log_with_a_failed_bind_names_the_pair_that_is_held() -> None:
    with netutil.claim_block() as block, netutil.bind_listener(block.host(2), 0) as sock:
        port = sock.getsockname()[1]
        log = f"Warning: Could not create server TCP listening socket {block.host(2)}:{port}: bind: Address already in use"
        failure = netutil.bind_failure(log, [(block.host(1), port), (block.host(2), port)])
        assert failure is not None and (failure.address, failure.port) == (block.host(2), port)
        assert f"held by pid {os.getpid()}" in str(failure)
        assert netutil.bind_failure("Ready to accept connections", [(block.host(2), port)]) is None


def test_retry_on_bind_starts_again_and_gives_up_naming_the_address() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise netutil.BindError("127.9.9.1", 6379, "held by pid 1 (init)")
        return "up"
    assert netutil.retry_on_bind(flaky) == "up" and len(calls) == 3

    def never() -> str:
        raise netutil.BindError("127.9.9.1", 6379, "held by pid 1 (init)")
    with pytest.raises(netutil.BindError, match=r"^cannot bind 127\.9\.9\.1:6379: held by pid 1 \(init\) \(gave up"):
        netutil.retry_on_bind(never, attempts=2, what="the Redis pods")


def test_a_port_held_by_a_wildcard_listener_is_moved_and_a_free_one_is_kept() -> None:
    with socket.socket() as wildcard:
        wildcard.bind(("0.0.0.0", 0))
        wildcard.listen(1)
        held = wildcard.getsockname()[1]
        moved = netutil.port_for(held)
        assert moved != held and netutil.MOVED_PORT_RANGE[0] <= moved <= netutil.MOVED_PORT_RANGE[1]
    free = netutil.free_port("127.0.0.1")
    assert netutil.port_for(free) == free


def test_the_postgres_harness_names_a_taken_service_address_instead_of_a_bare_oserror() -> None:
    from tests.runtime import postgres_harness as pg

    with pg.Cluster(pg.render(set_values=["etcd.replicas=1"])) as cluster:
        address, port = cluster.block.host(pg.SERVICE_HOST), cluster.port("postgresql")
        with netutil.bind_listener(address, port), pytest.raises(netutil.BindError) as caught:
            cluster.primary_service_ip()
    assert str(caught.value).startswith(f"cannot bind {address}:{port}: held by pid {os.getpid()} ")
    assert "\n" not in str(caught.value) and not cluster.tmp.exists()


@pytest.mark.parametrize("family,bind,address", [
    (socket.AF_INET, "127.0.0.1", "127.0.0.1"), (socket.AF_INET6, "::1", "::1"), (socket.AF_INET6, "::", "::"),
    (socket.AF_INET6, "::ffff:127.0.0.1", "127.0.0.1"),  # an IPv4-mapped IPv6 listener is its IPv4 address
])
def test_sock_diag_and_proc_net_tcp_list_the_same_listener_with_its_inode(family: int, bind: str,
                                                                          address: str) -> None:
    with socket.socket(family) as sock:
        sock.bind((bind, 0))
        port = sock.getsockname()[1]
        inode = os.stat(f"/proc/self/fd/{sock.fileno()}").st_ino
        before_listen = {(e.address, e.port) for e in netutil.sock_diag_listeners()}
        sock.listen()
        from_kernel = [e for e in netutil.sock_diag_listeners() if e.port == port]
        proc_tables = [*netutil.parse_proc_net_tcp(Path("/proc/net/tcp").read_text()),
                       *netutil.parse_proc_net_tcp(Path("/proc/net/tcp6").read_text(), v6=True)]
        from_proc = [e for e in proc_tables if e.port == port]
        in_listeners = netutil.Listener(address, port, inode) in netutil.listeners()
    assert (address, port) not in before_listen, "a bound socket that does not listen is not a listener"
    assert from_kernel == from_proc == [netutil.Listener(address, port, inode)]
    assert in_listeners
