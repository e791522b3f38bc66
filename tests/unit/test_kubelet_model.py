"""The runtime harness's model of kubelet readiness (tests/runtime/postgres_harness.py Kubelet), which decides the
PostgreSQL Services' endpoints in the failover and fault tests: the probe once per periodSeconds, the
thresholds, a stopped or new container not Ready; and how RoutingSampler judges what it saw through it (the
demoting-primary window excused, nothing else)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tests.runtime import postgres_harness as h


@dataclass
class Popen:
    pid: int
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class Proc:
    popen: Popen


@dataclass
class Pod:
    name: str


@dataclass
class FakeCluster:
    """What Kubelet reads of a Cluster: one pod, its process, its rendered probe, and scripted probe answers."""

    probe: dict[str, Any]
    answers: list[bool] = field(default_factory=list)
    asked: int = 0

    def __post_init__(self) -> None:
        self.pg_pods = [Pod("postgres-0")]
        self.procs = {"postgres-0": Proc(Popen(100))}

    def pg_container(self) -> dict[str, Any]:
        return {"readinessProbe": self.probe}

    def ready(self, i: int) -> bool:
        self.asked += 1
        return self.answers.pop(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(h.time, "monotonic", lambda: now[0])
    return now


def test_the_probe_runs_once_per_period_and_ready_keeps_the_last_result_between(clock: list[float]) -> None:
    cluster = FakeCluster({"periodSeconds": 2, "failureThreshold": 1}, [True, False])
    kubelet = h.Kubelet(cluster)  # type: ignore[arg-type]
    assert kubelet.ready(0) is True and cluster.asked == 1  # a running container is probed at once
    clock[0] += 1.9
    assert kubelet.ready(0) is True and cluster.asked == 1  # no probe within the period: the last result holds
    clock[0] += 0.1
    assert kubelet.ready(0) is False and cluster.asked == 2  # the next period's probe fails: out at once
    assert kubelet.probes == 2 and kubelet.lag() == 2 + 1  # periodSeconds x failureThreshold + timeoutSeconds


def test_thresholds_need_that_many_answers_in_a_row(clock: list[float]) -> None:
    cluster = FakeCluster({"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 2, "timeoutSeconds": 3},
                          [True, True, False, True, False, False])
    kubelet = h.Kubelet(cluster)  # type: ignore[arg-type]
    seen = []
    for _ in range(6):
        seen.append(kubelet.ready(0))
        clock[0] += 1
    assert seen == [False, True, True, True, True, False]
    assert kubelet.lag() == 1 * 2 + 3


def test_a_stopped_container_is_not_ready_at_once_and_a_new_one_starts_not_ready(clock: list[float]) -> None:
    cluster = FakeCluster({"periodSeconds": 10, "failureThreshold": 3, "successThreshold": 2}, [True, True, True])
    kubelet = h.Kubelet(cluster)  # type: ignore[arg-type]
    assert kubelet.ready(0) is False  # one success of the two successThreshold asks for
    clock[0] += 10
    assert kubelet.ready(0) is True and cluster.asked == 2
    cluster.procs["postgres-0"].popen.code = -9  # killed: no probe needed, and failureThreshold does not apply
    assert kubelet.ready(0) is False and cluster.asked == 2
    cluster.procs["postgres-0"] = Proc(Popen(200))  # restarted: a new container, probed at once, not yet Ready
    assert kubelet.ready(0) is False and cluster.asked == 3


def test_a_demoting_primary_is_excused_in_primary_only_for_the_probe_lag() -> None:
    cluster = SimpleNamespace(pg_pods=[Pod("postgres-0"), Pod("postgres-1")],
                              kubelet=SimpleNamespace(lag=lambda: 5.0))
    sampler = h.RoutingSampler(cluster)  # type: ignore[arg-type]
    sample = h.RoutingSample
    sampler.samples = [
        sample(0.0, [0], [1], ["primary", "replica"], ["primary", "replica"]),
        sample(4.0, [0], [1], ["replica", "replica"], ["replica", "replica"]),  # demoted, still routed: the window
        sample(5.5, [0], [], ["replica", "replica"], ["replica", "replica"]),  # past it: wrong
        sample(6.0, [0, 1], [], [None, "primary"], [None, "primary"]),  # two endpoints, one role unknown: wrong
        sample(7.0, [1], [1], ["replica", "primary"], ["replica", "primary"]),  # the primary in -replicas: wrong
    ]
    assert sampler.excused() == ["t=4.0 postgres-0 in -primary as replica, primary 4.0 s ago"]
    assert sampler.violations() == ["t=5.5 -primary routes to postgres-0, a replica",
                                    "t=6.0 -primary has 2 endpoints ['postgres-0', 'postgres-1']",
                                    "t=7.0 -replicas routes to postgres-1, the primary"]
