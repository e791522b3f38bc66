"""The fault matrix's client statement timeout (tests/runtime/pg_faults.py Deadline): a statement still running
after the timeout has its socket shut down, one that finished in time is left alone."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

from tests.runtime import pg_faults


def _connection() -> tuple[SimpleNamespace, socket.socket, socket.socket]:
    client, server = socket.socketpair()
    return SimpleNamespace(pgconn=SimpleNamespace(socket=client.fileno())), client, server


def test_a_statement_past_its_timeout_has_its_socket_shut_down_and_one_in_time_is_left_alone() -> None:
    stop = threading.Event()
    deadline = pg_faults.Deadline(0.2, stop)
    try:
        late, late_client, late_server = _connection()
        deadline.arm(late)
        late_server.settimeout(2)
        started = time.monotonic()
        assert late_server.recv(1) == b""  # EOF: the client's side was shut down
        assert time.monotonic() - started >= 0.15 and deadline.fired == 1

        quick, quick_client, quick_server = _connection()
        deadline.arm(quick)
        deadline.disarm()  # the statement returned in time
        time.sleep(0.35)  # past its deadline: still connected
        quick_server.settimeout(0.5)
        quick_client.sendall(b"x")
        assert quick_server.recv(1) == b"x" and deadline.fired == 1
    finally:
        stop.set()
        for s in (late_client, late_server, quick_client, quick_server):
            s.close()
