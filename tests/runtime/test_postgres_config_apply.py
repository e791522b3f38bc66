"""Dynamic settings applied to a running cluster by the chart's config-apply Job, on real daemons.

One cluster for the module (defaults: 3 etcd members, 3 Patroni + PostgreSQL 15, synchronous mode), started from
one render; later renders change values the way `helm upgrade` would, and the config-apply Job's command from the
NEW render runs against the running cluster (harness :func:`run_job`), as Kubernetes would start the new,
differently named Job. Order matters and is expressed with module fixtures: the fresh install finds nothing to
change, the upgrade changes shared_buffers / work_mem / max_connections (two need a restart) and ttl under a
writer, then a rejected parameter, a removed parameter, a repeated run and restartPending=false.
"""

from __future__ import annotations

import contextlib
import itertools
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import require_binaries
from tests.runtime import postgres_harness as h

pytestmark = pytest.mark.runtime

UPGRADE = ("postgresql.parameters.shared_buffers=192MB", "postgresql.parameters.work_mem=8MB",
           "postgresql.parameters.max_connections=250", "patroni.ttl=30")
NEW_VALUES = {"shared_buffers": "192MB", "work_mem": "8MB", "max_connections": "250"}


@dataclass
class RetryingWriter:
    """One INSERT per COMMIT through the -primary Service address, reconnecting after any failure; records every
    acknowledged id and every failed attempt (time), so the blip of a restart is measured, not hidden."""

    dsn: str
    table: str = "config_apply_writes"
    acked: list[int] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    errors: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY)")

    def _run(self) -> None:
        import psycopg

        next_id = 1
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s) ON CONFLICT DO NOTHING", (next_id,))
            except Exception as exc:  # noqa: BLE001 - a restart ends the connection; counted, then retried
                self.failures.append(time.monotonic())
                self.errors.add(str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__)
                with contextlib.suppress(Exception):
                    conn.close() if conn is not None else None
                conn = None
                time.sleep(0.05)
                continue
            self.acked.append(next_id)
            self.acked_at.append(time.monotonic())
            next_id += 1
        with contextlib.suppress(Exception):
            conn.close() if conn is not None else None

    def start(self) -> RetryingWriter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=15)

    def longest_gap(self) -> float:
        """Longest time between two acknowledged commits (the write outage)."""
        times = self.acked_at
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[h.Cluster]:
    require_binaries(*h.BINARIES)
    with h.running_cluster(h.render()) as c:
        yield c


def render(*set_values: str) -> list[Any]:
    return h.render(set_values=set_values)


def members(cluster: h.Cluster) -> range:
    return range(len(cluster.pg_pods))


def show(cluster: h.Cluster, i: int, name: str) -> str:
    return str(h.query(cluster.superuser_dsn(cluster.pg_pods[i].ip), f"SHOW {name}")[0][0])


def dcs_config(cluster: h.Cluster) -> dict[str, Any]:
    leader = cluster.leader()
    assert leader is not None
    cfg = h.http_json(f"http://{cluster.pg_pods[leader].ip}:{cluster.port('patroni')}/config")
    assert cfg is not None
    return cfg


@pytest.fixture(scope="module")
def fresh(cluster: h.Cluster) -> dict[str, Any]:
    cluster.wait_healthy()
    return h.run_job(cluster, cluster.chart.objects, "config-apply")


@pytest.fixture(scope="module")
def upgrade(cluster: h.Cluster, fresh: dict[str, Any]) -> dict[str, Any]:
    cluster.wait_healthy()
    leader = cluster.leader()
    before = {i: {n: show(cluster, i, n) for n in NEW_VALUES} for i in members(cluster)}
    writer = RetryingWriter(cluster.superuser_dsn(cluster.primary_service_ip().ip)).start()
    time.sleep(1.0)
    started = time.monotonic()
    result = h.run_job(cluster, render(*UPGRADE), "config-apply")
    duration = time.monotonic() - started
    time.sleep(1.0)
    writer.stop()
    rows = h.query(cluster.superuser_dsn(cluster.primary_service_ip().ip), f"SELECT id FROM {writer.table}")
    present = {r[0] for r in rows}
    measured = {"job_s": round(duration, 1), "acked": len(writer.acked), "failed_attempts": len(writer.failures),
                "longest_write_gap_s": round(writer.longest_gap(), 2), "errors": sorted(writer.errors)[:3],
                "lost": [i for i in writer.acked if i not in present]}
    print(f"\nconfig-apply upgrade under writes: {measured}")
    return {"result": result, "measured": measured, "leader": leader, "before": before}


def test_fresh_install_job_finds_the_dcs_equal_to_the_values(fresh: dict[str, Any]) -> None:
    assert fresh["returncode"] == 0, fresh["stderr"] + fresh["stdout"]
    assert fresh["changes"] == [], "bootstrap.dcs and desired.json must render the same settings"
    assert fresh["restarted"] == [] and fresh["pending"] == []


def test_upgrade_reports_each_change_old_to_new(upgrade: dict[str, Any]) -> None:
    result = upgrade["result"]
    assert result["returncode"] == 0, result["stderr"] + result["stdout"]
    changed = {c["key"]: (c["old"], c["new"]) for c in result["changes"]}
    assert changed == {"postgresql.parameters.shared_buffers": ("256MB", "192MB"),
                       "postgresql.parameters.work_mem": (None, "8MB"),
                       "postgresql.parameters.max_connections": ("200", "250"),
                       "ttl": (20, 30)}
    assert "postgresql.parameters.shared_buffers: 256MB -> 192MB" in result["stdout"]
    assert "ttl: 20 -> 30" in result["stdout"]


def test_new_values_are_live_on_every_member_and_in_the_dcs(cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    for i in members(cluster):
        assert upgrade["before"][i] != NEW_VALUES
        assert {n: show(cluster, i, n) for n in NEW_VALUES} == NEW_VALUES, cluster.pg_pods[i].name
        state = cluster.patroni_state(i) or {}
        assert not state.get("pending_restart"), state
    cfg = dcs_config(cluster)
    assert cfg["ttl"] == 30
    assert {n: cfg["postgresql"]["parameters"][n] for n in NEW_VALUES} == NEW_VALUES


def test_restarts_go_member_by_member_with_the_primary_last(cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    restarted = upgrade["result"]["restarted"]
    old_leader = cluster.pg_pods[upgrade["leader"]].name
    assert sorted(restarted) == sorted(p.name for p in cluster.pg_pods)
    assert restarted[-1] == old_leader, restarted
    assert cluster.leader() == upgrade["leader"], "a restart is not a failover: the leader keeps its key"


def test_writes_are_served_throughout_with_a_bounded_restart_blip(upgrade: dict[str, Any]) -> None:
    m = upgrade["measured"]
    assert m["lost"] == [], "an acknowledged commit is gone"
    assert m["acked"] > 100, m
    # The only write outage is the primary's own restart (stop + start of PostgreSQL, shared_buffers reallocated);
    # replica restarts do not stop writes (synchronous mode moves the sync standby first).
    assert m["longest_write_gap_s"] < 15, m


def test_rejected_parameter_fails_the_job_naming_it_and_applies_nothing(
        cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    before = dcs_config(cluster)
    bad = h.run_job(cluster, render(*UPGRADE, "postgresql.parameters.shared_buffers=12XB",
                                    "postgresql.parameters.work_mme=8MB",
                                    "postgresql.parameters.max_wal_senders=999999"), "config-apply")
    assert bad["returncode"] == 2, bad
    assert "postgresql.parameters.shared_buffers '12XB' is not a valid integer" in bad["stderr"], bad["stderr"]
    assert "postgresql.parameters.work_mme is not a PostgreSQL 15 parameter" in bad["stderr"], bad["stderr"]
    # Patroni itself would clamp this to the maximum with a log line; the Job refuses it.
    assert "postgresql.parameters.max_wal_senders '999999' is outside 0..262143" in bad["stderr"], bad["stderr"]
    assert bad["ok"] is False and bad["changes"] == []
    assert dcs_config(cluster) == before


def test_patroni_refuses_an_unauthenticated_patch_so_the_job_used_the_rest_password(
        cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    leader = cluster.leader()
    assert leader is not None
    url = f"http://{cluster.pg_pods[leader].ip}:{cluster.port('patroni')}/config"
    req = h.urllib.request.Request(url, data=b'{"ttl": 40}', method="PATCH",
                                   headers={"Content-Type": "application/json"})
    with pytest.raises(h.urllib.error.HTTPError) as refused:
        h.urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 401
    assert dcs_config(cluster)["ttl"] == 30


def test_parameter_removed_from_values_is_removed_from_the_dcs_and_resets(
        cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    result = h.run_job(cluster, render(*UPGRADE, "postgresql.parameters.log_min_duration_statement=null"),
                       "config-apply")
    assert result["returncode"] == 0, result["stderr"] + result["stdout"]
    assert [(c["key"], c["new"]) for c in result["changes"]] == [
        ("postgresql.parameters.log_min_duration_statement", None)]
    assert result["restarted"] == []
    assert "log_min_duration_statement" not in dcs_config(cluster)["postgresql"]["parameters"]
    for i in members(cluster):
        cluster.wait(f"log_min_duration_statement back to its default on {cluster.pg_pods[i].name}",
                     lambda i=i: show(cluster, i, "log_min_duration_statement") == "-1", 20)
    again = h.run_job(cluster, render(*UPGRADE, "postgresql.parameters.log_min_duration_statement=null"),
                      "config-apply")
    assert again["returncode"] == 0 and again["changes"] == [] and again["restarted"] == [], again


def test_restart_pending_off_reports_members_and_the_command(cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    result = h.run_job(cluster, render(*UPGRADE, "postgresql.parameters.log_min_duration_statement=null",
                                       "postgresql.parameters.max_connections=260",
                                       "patroni.configApply.restartPending=false"), "config-apply")
    assert result["returncode"] == 0, result["stderr"] + result["stdout"]
    assert result["restarted"] == []
    leader = cluster.pg_pods[upgrade["leader"]].name
    assert sorted(result["pending"]) == sorted(p.name for p in cluster.pg_pods)
    assert result["pending"][-1] == leader, "the printed order restarts the primary last"
    assert (f"exec {leader} -c postgres -- patronictl -c /etc/patroni/patroni.yml restart "
            f"{cluster.pg_sts['metadata']['name']} {leader} --pending --force") in result["stdout"]
    for i in members(cluster):
        assert (cluster.patroni_state(i) or {}).get("pending_restart") is True
        assert show(cluster, i, "max_connections") == "250", "not restarted: the old value still runs"


def test_the_printed_commands_restart_the_pending_members(cluster: h.Cluster, upgrade: dict[str, Any]) -> None:
    """Run the patronictl part of each printed `kubectl exec` line inside its "pod" (that pod's env and mounted
    patroni.yml, as the postgres user), in the printed order; then nothing is pending and the value is live."""
    result = h.run_job(cluster, render(*UPGRADE, "postgresql.parameters.log_min_duration_statement=null",
                                       "postgresql.parameters.max_connections=260",
                                       "patroni.configApply.restartPending=false"), "config-apply")
    lines = [ln for ln in result["stdout"].splitlines() if "kubectl -n " in ln and " exec " in ln]
    assert [ln.split(" exec ", 1)[1].split()[0] for ln in lines] == result["pending"]
    for line in lines:
        name = line.split(" exec ", 1)[1].split()[0]
        pod = next(p for p in cluster.pg_pods if p.name == name)
        argv = shlex.split(line.split(" -- ", 1)[1])
        translate = h.Translator(pod.mounts, cluster.hosts, pod.ip)
        argv = [shutil.which(argv[0]) or argv[0], *(translate(a) for a in argv[1:])]
        done = subprocess.run(h._as_user(argv), env=cluster.pod_env(pod), capture_output=True, text=True,
                                timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    for i in members(cluster):
        cluster.wait(f"{cluster.pg_pods[i].name} restarted with max_connections 260",
                     lambda i=i: show(cluster, i, "max_connections") == "260"
                     and not (cluster.patroni_state(i) or {}).get("pending_restart"), 60)
