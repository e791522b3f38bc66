"""The Redis harness's polling reads (tests/runtime/redis_harness.py RedisHarness._ask) keep one client per node
and read as a new client would: a connection error (the node restarted) is retried once on a fresh client, a
timeout (a frozen node) is not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis

from tests.runtime.redis_harness import RedisHarness


class Client:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers

    def info(self, section: str) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _harness(made: list[Client], answers: list[list[Any]]) -> SimpleNamespace:
    def client(i: int, timeout: float = 1.0) -> Client:
        made.append(Client(answers.pop(0)))
        return made[-1]
    return SimpleNamespace(_polling={}, client=client, sentinel_client=client)


def test_one_client_is_kept_and_a_connection_error_is_read_again_on_a_fresh_one() -> None:
    made: list[Client] = []
    fake = _harness(made, [[{"role": "master"}, redis.ConnectionError("Connection closed by server.")],
                           [{"role": "slave"}]])
    read = lambda: RedisHarness._ask(fake, "redis", 0, lambda c: c.info("replication"))  # type: ignore[arg-type]
    assert read() == {"role": "master"} and len(made) == 1
    assert read() == {"role": "slave"} and len(made) == 2  # the restart: a new client answers


def test_a_timeout_is_not_retried() -> None:
    made: list[Client] = []
    fake = _harness(made, [[redis.TimeoutError("Timeout reading from socket")], [{"role": "master"}]])
    with pytest.raises(redis.TimeoutError):
        RedisHarness._ask(fake, "redis", 0, lambda c: c.info("replication"))  # type: ignore[arg-type]
    assert len(made) == 1
