"""The PostgreSQL data directory and etcd on real volumes, on real daemons started from the rendered chart.

One small cluster for the module (1 etcd member, 1 Patroni + PostgreSQL 15 pod, etcd volume 224Mi so the quota the
chart computes from it is 16 MiB): the container's start script (files/start.sh) repairs a data directory that a
recursive fsGroup change left 02770 and refuses one owned by another user; etcd's rendered liveness and startup
probes stay healthy while the NOSPACE alarm is raised, and the recovery docs/postgres.md gives clears it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binaries
from tests.runtime import postgres_harness as h

pytestmark = pytest.mark.runtime

LOCAL = h.CHART / "ci" / "local-values.yaml"
SMALL = ["replicas=1", "etcd.replicas=1", "patroni.synchronousMode=false", "etcd.persistence.size=224Mi"]
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster() -> Iterator[h.Cluster]:
    require_binaries(*h.BINARIES, "etcdctl")
    with h.running_cluster(h.render([LOCAL], SMALL)) as c:
        yield c


def _bin(cluster: h.Cluster, name: str) -> str:
    cfg = yaml.safe_load((cluster.config_dir(0) / "patroni.yml").read_text())
    return str(Path(cfg["postgresql"]["bin_dir"]) / name)


def _start_logged(cluster: h.Cluster, i: int) -> tuple[h.Proc, int]:
    log = cluster.tmp / f"{cluster.pg_pods[i].name}.log"
    offset = log.stat().st_size if log.exists() else 0
    return cluster.start_patroni(i), offset


def _writable(cluster: h.Cluster) -> None:
    """Wait until pod 0's PostgreSQL accepts connections and is out of recovery (Patroni's /primary answers as
    soon as it holds the leader key, which a quickly restarted single node still does)."""
    dsn = cluster.superuser_dsn(cluster.pg_pods[0].ip)

    def ok() -> bool:
        try:
            return h.query(dsn, "SELECT pg_is_in_recovery()") == [(False,)]
        except Exception:  # noqa: BLE001 - not up yet
            return False
    assert cluster.wait_healthy() == 0
    cluster.wait("a writable PostgreSQL", ok, 60)


def test_a_data_directory_left_02770_by_an_fsgroup_change_is_made_0700_and_postgresql_starts(
        cluster: h.Cluster) -> None:
    assert cluster.wait_healthy() == 0
    data = cluster.data_dir(0)
    cluster.kill_node(0)
    # What kubelet's recursive fsGroup change leaves: group-owned, setgid, group-writable directories and files.
    for path in [data, *data.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, 0o2770 if path.is_dir() else mode | 0o060)
    assert stat.S_IMODE(data.stat().st_mode) == 0o2770
    refused = subprocess.run(h._as_user([_bin(cluster, "postgres"), "--single", "-D", str(data), "postgres"]),
                             input="SELECT 1;\n", capture_output=True, text=True, timeout=30, check=False)
    assert "invalid permissions" in refused.stderr, "PostgreSQL itself should refuse a 02770 data directory"

    cluster.start_patroni(0)
    _writable(cluster)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert data.stat().st_uid == h.pwd.getpwnam(h.OS_USER).pw_uid
    cluster.wait("the pod labelled primary and routed", lambda: cluster.endpoints("-primary") == [0], 15)


def test_a_data_directory_owned_by_another_user_stops_the_start_with_a_message_naming_the_fix(
        cluster: h.Cluster) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the data directory to another owner")
    data = cluster.data_dir(0)
    cluster.kill_node(0)
    pw = h.pwd.getpwnam(h.OS_USER)
    os.chown(data, 0, 0)
    try:
        proc, offset = _start_logged(cluster, 0)
        assert proc.popen.wait(timeout=60) == 1
        with open(proc.log, "rb") as fh:
            fh.seek(offset)
            log = fh.read().decode(errors="replace")
        assert f"is owned by uid 0, PostgreSQL runs as uid {pw.pw_uid}" in log, log
        assert "securityContext.runAsUser" in log and "postmaster" not in log.lower()
        # The label reset ran before the check: the pod is in neither Service.
        assert cluster.api.label_of(cluster.ns, cluster.pg_pods[0].name, cluster.role_label) == "stopped"
    finally:
        os.chown(data, pw.pw_uid, pw.pw_gid)
    cluster.start_patroni(0)
    _writable(cluster)


# ---------------------------------------------------------------------------------------------------------- etcd
def _etcd(cluster: h.Cluster) -> tuple[h.Pod, dict[str, Any], str]:
    container = cluster.etcd_sts["spec"]["template"]["spec"]["containers"][0]
    pod = cluster.etcd_pods[0]
    return pod, container, f"http://{pod.ip}:{cluster.etcd_port('client')}"


def _gateway(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's v3 JSON gateway (keys and values base64)."""
    req = h.urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST",
                                   headers={"Content-Type": "application/json"})
    try:
        with h.urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except h.urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _etcdctl(url: str, *args: str) -> str:
    done = subprocess.run([shutil.which("etcdctl") or "etcdctl", f"--endpoints={url}", *args],
                          env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_etcd_quota_fits_the_volume_and_a_full_quota_does_not_fail_liveness_and_is_recovered(
        cluster: h.Cluster) -> None:
    pod, container, url = _etcd(cluster)
    quota = int(next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--quota-backend-bytes=")))
    assert quota == 16 * MiB  # (224Mi - 192Mi of WAL) / 2
    cluster.kill_node(0)  # Patroni could not renew its keys under NOSPACE; out of the way
    key = base64.b64encode(b"/nova-test/fill").decode()
    value = base64.b64encode(os.urandom(512 * 1024)).decode()
    error = ""
    for _ in range(4 * quota // (512 * 1024)):  # overwrites of one key: history, like Patroni's leader key
        reply = _gateway(url, "/v3/kv/put", {"key": key, "value": value})
        if "error" in reply or "message" in reply:
            error = str(reply.get("error") or reply.get("message"))
            break
    assert "database space exceeded" in error, error
    alarms = _gateway(url, "/v3/maintenance/alarm", {"action": "GET"})
    assert [a.get("alarm") for a in alarms.get("alarms", [])] == ["NOSPACE"], alarms

    # The alarm is real for the plain health check (readiness), and the chart's liveness/startup ignore it.
    assert h.http_status(f"{url}/health") == 503
    assert not cluster.probe(pod, container, "readinessProbe")
    assert cluster.probe(pod, container, "livenessProbe"), container["livenessProbe"]
    assert cluster.probe(pod, container, "startupProbe"), container["startupProbe"]

    # docs/postgres.md's recovery: compact the history, defragment (the chart's CronJob command, run as rendered),
    # disarm; then writes pass again.
    status = json.loads(_etcdctl(url, "endpoint", "status", "-w", "json"))[0]["Status"]
    _etcdctl(url, "compact", str(status["header"]["revision"]))
    cron = cluster.chart.component("CronJob", "etcd-defrag")
    job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    translate = h.Translator({}, cluster.hosts, pod.ip)
    cmd = [shutil.which(Path(job["command"][0]).name) or job["command"][0], *map(translate, job["args"])]
    done = subprocess.run(cmd, env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and "Finished defragmenting" in done.stdout, (done.stdout, done.stderr)
    after = json.loads(_etcdctl(url, "endpoint", "status", "-w", "json"))[0]["Status"]
    assert after["dbSize"] < status["dbSize"] // 4, (status["dbSize"], after["dbSize"])
    _etcdctl(url, "alarm", "disarm")
    assert _etcdctl(url, "alarm", "list").strip() == ""
    assert "error" not in _gateway(url, "/v3/kv/put", {"key": key, "value": base64.b64encode(b"ok").decode()})
    assert h.http_status(f"{url}/health") == 200
    cluster.start_patroni(0)
    _writable(cluster)
