"""The fault matrix's clients (tests/runtime/pg_faults.py): the statement timeout (Deadline), where a statement
still running after the timeout has its socket shut down and one that finished in time is left alone; and the
service client's pace (Load.settle), flat out until writes are back after the fault, then SETTLED_PAUSE."""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import SimpleNamespace
from typing import Self

import pytest

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


class _FakeConnection:
    """What Load's client uses of a psycopg connection: execute().fetchone(), broken/closed, close()."""

    broken = closed = False

    def __init__(self, sock: socket.socket) -> None:
        self.pgconn = SimpleNamespace(socket=sock.fileno())

    def execute(self, sql: str, params: tuple[object, ...]) -> SimpleNamespace:
        return SimpleNamespace(fetchone=lambda: ("10.0.0.1",))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RecordingStop(threading.Event):
    """The clients' stop event, recording each pause a client takes between writes (by thread name)."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[tuple[str, float]] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append((threading.current_thread().name, timeout or 0.0))
        return super().wait(timeout)


def test_the_service_client_writes_flat_out_until_settled_then_at_its_settled_pace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Flat out while a fault is on (no pause between writes: a commit is always in flight when it strikes),
    one write per SETTLED_PAUSE once Run.resumed settles it; a direct client keeps its fixed pause throughout."""
    client, server = socket.socketpair()
    monkeypatch.setitem(sys.modules, "psycopg", SimpleNamespace(
        connect=lambda dsn, autocommit: _FakeConnection(client), OperationalError=OSError))
    cluster = SimpleNamespace(primary_service_ip=lambda: SimpleNamespace(ip="10.0.0.9"),
                              superuser_dsn=lambda ip: f"host={ip}", pg_pods=[SimpleNamespace(ip="10.0.0.2")])
    load = pg_faults.Load(cluster, "t")  # type: ignore[arg-type]
    load._stop = _RecordingStop()
    load.threads[0].name, load.threads[1].name = "service", "direct"
    try:
        load.start()
        assert load.wait_acks(200, timeout=10)
        settled_from = len(load._stop.pauses)
        before = [t for name, t in load._stop.pauses[:settled_from] if name == "service"]
        load.settle()
        settled_at = time.monotonic()
        assert load.wait_acks(5, since=settled_at, timeout=10)
    finally:
        load.stop()
        client.close()
        server.close()
    after = [t for name, t in load._stop.pauses[settled_from:] if name == "service"]
    assert not any(before), f"the service client paused before it was settled: {set(before)}"
    assert after and set(after) <= {0.0, load.SETTLED_PAUSE} and load.SETTLED_PAUSE in after, set(after)
    assert {t for name, t in load._stop.pauses if name == "direct"} == {0.05}
