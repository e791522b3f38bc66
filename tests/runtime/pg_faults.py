"""The PostgreSQL fault matrix on a cluster started by postgres_harness (issue 11, point 5).

Each fault runs the same measurement around a cluster that :func:`postgres_harness.running_cluster` started:

- :class:`Load`: one *service client* writes one autocommit INSERT at a time through the -primary Service's
  ClusterIP (:meth:`Cluster.primary_service_ip`, each new connection routed to the pod the Service selects
  then), reconnecting after any error, as an application does: flat out (a commit always in flight at the
  fault) until writes are back (:meth:`Run.resumed`), then one every ``Load.SETTLED_PAUSE`` seconds while the
  rest of the run (rejoins, health) is watched; and one *direct client per pod* writes to that
  pod's own address every 50 ms, as a client that still reaches a partitioned or orphaned primary would. Every
  INSERT returns ``host(inet_server_addr())``, so each acknowledged (committed) write is recorded with the node
  that committed it and the time its COMMIT returned. A client gives up on a statement after
  ``client_timeout`` seconds by shutting its socket down (never by a cancel request: cancelling a COMMIT that
  waits for the synchronous standby makes PostgreSQL return it as committed, with only a warning).
- the harness's :class:`postgres_harness.RoutingSampler`: both Services' endpoints every 100 ms (labels and the
  Ready condition of :class:`postgres_harness.Kubelet`: the rendered readiness probe once per periodSeconds); a
  violation is -primary holding two pods or one whose role (held over the sample) is not primary, or -replicas
  holding the primary. Not counted: a primary that is demoting, still in -primary until its next probe fails
  (the documented window, at most periodSeconds + timeoutSeconds; ``endpoint_demoting_samples``).
- :func:`summarize`: ``recovery_s`` (the longest stretch without an acknowledged service write from the fault
  on), ``acked_lost`` (acknowledged ids missing on the final leader, service and direct writes together),
  ``dual_write_window_s`` (the longest overlap of two nodes' [first, last] acknowledged write during the run).

Partitions use tests/runtime/partition.py's cgroup rules: PostgreSQL, Patroni and etcd clients do not bind a
source address, so :func:`pod_cgroups` starts each pod's processes in a cgroup v2 of its own and the rules match
the sender's cgroup. The cgroups are removed when the context ends (partition.PodCgroups.cleanup).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from tests.runtime import parsed_yaml, partition
from tests.runtime import postgres_harness as h

PRIMARY_ROLES = ("master", "primary")


# ----------------------------------------------------------------------------------------------------------
# cgroups: which pod sent a packet
# ----------------------------------------------------------------------------------------------------------
def pod_cgroups(cluster: h.Cluster) -> partition.PodCgroups:
    """One cgroup v2 per pod of ``cluster`` (partition.PodCgroups), and the cluster made to start every daemon
    (etcd, Patroni, and so PostgreSQL) in its pod's cgroup: the command is wrapped (still root, before setpriv
    drops to postgres) so that the PID, session and log stay what :meth:`Cluster._spawn` gives; ``_spawn`` is
    replaced on this instance only."""
    cgroups = partition.PodCgroups(cluster.block.prefix)

    def spawn(name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> h.Proc:
        log = cluster.tmp / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(cgroups.wrap(name, h._as_user(cmd)), env=env, cwd=cwd, stdout=fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = h.Proc(name, popen, log)
        cluster.procs[name] = proc
        return proc
    cluster._spawn = spawn  # type: ignore[method-assign]
    return cgroups


# ----------------------------------------------------------------------------------------------------------
# Load and measurement
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Ack:
    id: int
    node: str
    at: float
    via: str


def execute(dsn: str, sql: str, args: tuple[Any, ...] = ()) -> None:
    """One statement that returns no rows, autocommit."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, args)


def _abort(conn: Any) -> None:
    """Shut the client's socket down (no cancel request): the pending statement ends with an error."""
    with contextlib.suppress(Exception):
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class Deadline:
    """A client's statement timeout: one watchdog thread per client that aborts (:func:`_abort`) the connection
    of a statement still running ``timeout`` seconds after :meth:`arm` (checked every 50 ms). A
    ``threading.Timer`` per statement did the same with a new thread for every INSERT, hundreds a second."""

    def __init__(self, timeout: float, stop: threading.Event) -> None:
        self.timeout = timeout
        self._stop = stop
        self._lock = threading.Lock()
        self._conn: Any = None
        self._due = 0.0
        self.fired = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def arm(self, conn: Any) -> None:
        with self._lock:
            self._conn, self._due = conn, time.monotonic() + self.timeout

    def disarm(self) -> None:
        with self._lock:
            self._conn = None

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                late = self._conn if self._conn is not None and time.monotonic() >= self._due else None
                if late is not None:
                    self._conn = None
                    self.fired += 1
            if late is not None:
                _abort(late)


class Load:
    """The service client and the per-pod direct clients (see the module docstring)."""

    # The service client's pause between writes once the fault is over: a later outage is still seen to 10 ms,
    # at about a quarter of the commits (and of their CPU in the client, the primary and the standbys).
    SETTLED_PAUSE = 0.01

    def __init__(self, cluster: h.Cluster, table: str, client_timeout: float = 3.0) -> None:
        self.cluster = cluster
        self.table = table
        self.client_timeout = client_timeout
        self.service_pause = 0.0
        self.acks: list[Ack] = []
        self.errors: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        service = cluster.primary_service_ip()
        self.service_dsn = cluster.superuser_dsn(service.ip)
        execute(self.service_dsn, f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, node text, "
                                  "via text, at timestamptz DEFAULT clock_timestamp())")
        self.threads = [threading.Thread(target=self._client, args=("service", self.service_dsn, None), daemon=True)]
        for pod in cluster.pg_pods:
            self.threads.append(threading.Thread(
                target=self._client, args=(pod.ip, cluster.superuser_dsn(pod.ip), 0.05), daemon=True))

    def _next(self) -> int:
        with self._lock:
            return next(self._ids)

    def _error(self, via: str, exc: BaseException) -> None:
        key = f"{via}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0][:80]}"
        with self._lock:
            self.errors[key] = self.errors.get(key, 0) + 1

    def settle(self) -> None:
        """The fault is over: the service client writes every SETTLED_PAUSE seconds from now on."""
        self.service_pause = self.SETTLED_PAUSE

    def _client(self, via: str, dsn: str, fixed_pause: float | None) -> None:
        """Write until stopped; ``fixed_pause`` between writes, or (None) the service client's current pace."""
        import psycopg

        conn = None
        sql = f"INSERT INTO {self.table} (id, via, node) VALUES (%s, %s, host(inet_server_addr())) RETURNING node"
        deadline = Deadline(self.client_timeout, self._stop)
        while not self._stop.is_set():
            pause = self.service_pause if fixed_pause is None else fixed_pause
            if conn is None:
                try:
                    conn = psycopg.connect(dsn, autocommit=True)
                except Exception as exc:  # noqa: BLE001 - no endpoint / node down: try again
                    self._error(via, exc)
                    self._stop.wait(0.1)
                    continue
            ident = self._next()
            deadline.arm(conn)
            try:
                row = conn.execute(sql, (ident, via)).fetchone()
            except Exception as exc:  # noqa: BLE001 - every failure is "not acknowledged"
                self._error(via, exc)
                if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
                self._stop.wait(max(pause, 0.05))
                continue
            finally:
                deadline.disarm()
            at = time.monotonic()
            with self._lock:
                self.acks.append(Ack(ident, str(row[0]) if row else "?", at, via))
            if pause:
                self._stop.wait(pause)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def service_acks(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for a in self.acks if a.via == "service" and a.at >= since)

    def wait_acks(self, n: int, since: float = 0.0, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.service_acks(since) >= n:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(timeout=self.client_timeout + 5)


def dual_write_window(acks: list[Ack]) -> tuple[float, dict[str, tuple[float, float, int]]]:
    """Longest overlap of two nodes' [first, last] acknowledged write, and those spans per node."""
    spans: dict[str, tuple[float, float, int]] = {}
    for a in acks:
        first, last, n = spans.get(a.node, (a.at, a.at, 0))
        spans[a.node] = (min(first, a.at), max(last, a.at), n + 1)
    window = 0.0
    nodes = list(spans)
    for x, y in itertools.combinations(nodes, 2):
        window = max(window, min(spans[x][1], spans[y][1]) - max(spans[x][0], spans[y][0]))
    return window, spans


def outage(acks: list[Ack], fault_at: float, end: float) -> tuple[float, float]:
    """(longest stretch without an acknowledged service write from ``fault_at`` to ``end``, its start after
    the fault). The stretch is open-ended (to ``end``) when writes never came back."""
    times = [fault_at] + sorted(a.at for a in acks if a.via == "service" and fault_at < a.at <= end) + [end]
    best, start = 0.0, 0.0
    for prev, cur in itertools.pairwise(times[:-1]):
        if cur - prev > best:
            best, start = cur - prev, prev - fault_at
    if len(times) == 2:  # no acknowledged write after the fault at all
        best, start = end - fault_at, 0.0
    return best, start


def summarize(cluster: h.Cluster, load: Load, sampler: h.RoutingSampler, fault_at: float, end: float
              ) -> dict[str, Any]:
    leader = cluster.wait_healthy(120)
    rows = h.query(cluster.superuser_dsn(cluster.pg_pods[leader].ip), f"SELECT id FROM {load.table}")
    present = {r[0] for r in rows}
    acked = list(load.acks)
    lost = sorted(a.id for a in acked if a.id not in present)
    window, spans = dual_write_window(acked)
    recovery, stopped_after = outage(acked, fault_at, end)
    names = {p.ip: p.name for p in cluster.pg_pods}
    return {
        "recovery_s": round(recovery, 2),
        "writes_stopped_after_s": round(stopped_after, 2),
        "acked_lost": len(lost),
        "acked_lost_ids": lost[:20],
        "dual_write_window_s": round(max(window, 0.0), 3),
        "endpoint_violations": len(violations := sampler.violations()),
        "endpoint_samples": len(sampler.samples),
        "endpoint_violation_examples": violations[:3],
        "endpoint_demoting_samples": len(sampler.excused()),
        "readiness_probes": cluster.kubelet.probes,
        "acked_writes": len(acked),
        "acked_by_node": {names.get(n, n): {"writes": c, "first_s": round(f - fault_at, 2),
                                            "last_s": round(last - fault_at, 2)}
                          for n, (f, last, c) in sorted(spans.items())},
        "final_leader": cluster.pg_pods[leader].name,
        "client_errors": dict(sorted(load.errors.items(), key=lambda kv: -kv[1])[:6]),
    }


# ----------------------------------------------------------------------------------------------------------
# Cluster operations the faults need
# ----------------------------------------------------------------------------------------------------------
def dcs(cluster: h.Cluster) -> dict[str, Any]:
    """The rendered bootstrap.dcs settings (ttl, loop_wait, retry_timeout, failsafe_mode, ...)."""
    return dict(parsed_yaml(cluster.chart.configmap("-patroni")["patroni.yml"])["bootstrap"]["dcs"])


def cluster_members(cluster: h.Cluster, via: int) -> list[dict[str, Any]]:
    data = h.http_json(f"http://{cluster.pg_pods[via].ip}:{cluster.port('patroni')}/cluster") or {}
    return list(data.get("members") or [])


def sync_standby(cluster: h.Cluster, leader: int) -> int:
    names = {p.name: i for i, p in enumerate(cluster.pg_pods)}
    found = [names[m["name"]] for m in cluster_members(cluster, leader) if m.get("role") == "sync_standby"]
    if len(found) != 1:
        raise RuntimeError(f"expected one synchronous standby, found {found}")
    return found[0]


def kill_patroni_only(cluster: h.Cluster, i: int) -> None:
    """SIGKILL Patroni's process group; PostgreSQL (its own session, see Patroni's postmaster.py) keeps running."""
    proc = cluster.procs[cluster.pg_pods[i].name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)


def etcd_kill(cluster: h.Cluster, i: int) -> None:
    proc = cluster.procs[cluster.etcd_pods[i].name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)


def etcd_restart(cluster: h.Cluster, i: int) -> None:
    """Start etcd member ``i`` again on its data directory, with the rendered args (a pod restart)."""
    container = cluster.etcd_sts["spec"]["template"]["spec"]["containers"][0]
    pod = cluster.etcd_pods[i]
    env = h.container_env(container, pod, cluster.secrets)
    translate = h.Translator(pod.mounts, cluster.hosts, pod.ip)
    args = [translate(h.expand(a, env)) for a in container.get("args") or []]
    binary = h.shutil.which(Path(container["command"][0]).name) or container["command"][0]
    cluster._spawn(pod.name, [binary, *args], {**cluster.base_env(), **env}, pod.root)


def etcd_url(cluster: h.Cluster, i: int) -> str:
    return f"http://{cluster.etcd_pods[i].ip}:{cluster.etcd_port('client')}"


def etcd_healthy(cluster: h.Cluster) -> bool:
    return all(h.http_status(etcd_url(cluster, i) + "/health", timeout=2) == 200 for i in range(len(cluster.etcd_pods)))


def etcd_leader(cluster: h.Cluster) -> int | None:
    """Index of the etcd raft leader (v3 gRPC gateway maintenance/status)."""
    ids: dict[int, int] = {}
    leader_id = None
    for i in range(len(cluster.etcd_pods)):
        req = h.urllib.request.Request(etcd_url(cluster, i) + "/v3/maintenance/status", data=b"{}", method="POST")
        with contextlib.suppress(Exception), h.urllib.request.urlopen(req, timeout=2) as r:
            st = h.json.loads(r.read())
            ids[int(st["header"]["member_id"])] = i
            leader_id = int(st["leader"])
    return ids.get(leader_id) if leader_id is not None else None


def walreceiver_pid(cluster: h.Cluster, i: int) -> int | None:
    for pid in h._descendants(cluster.postmaster_pid(i)):
        with contextlib.suppress(OSError):
            if "walreceiver" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return pid
    return None


def rest_auth(cluster: h.Cluster) -> str:
    cfg = parsed_yaml((cluster.config_dir(0) / "patroni.yml").read_text())
    user = cfg["restapi"]["authentication"]["username"]
    return h.base64.b64encode(f"{user}:{cluster.secrets_flat()['rest-password']}".encode()).decode()


def patch_config(cluster: h.Cluster, leader: int, patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH Patroni's dynamic configuration (/config) through the leader's REST API."""
    req = h.urllib.request.Request(f"http://{cluster.pg_pods[leader].ip}:{cluster.port('patroni')}/config",
                                   data=h.json.dumps(patch).encode(), method="PATCH",
                                   headers={"Content-Type": "application/json",
                                            "Authorization": f"Basic {rest_auth(cluster)}"})
    with h.urllib.request.urlopen(req, timeout=5) as r:
        return dict(h.json.loads(r.read()))


def live_config(cluster: h.Cluster, i: int) -> dict[str, Any]:
    return h.http_json(f"http://{cluster.pg_pods[i].ip}:{cluster.port('patroni')}/config") or {}


def log_since(cluster: h.Cluster, i: int, offset: int) -> str:
    with open(cluster.procs[cluster.pg_pods[i].name].log, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def log_size(cluster: h.Cluster, i: int) -> int:
    log = cluster.tmp / f"{cluster.pg_pods[i].name}.log"
    return log.stat().st_size if log.exists() else 0


# ----------------------------------------------------------------------------------------------------------
# The faults
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """A started cluster shared by the faults, its cgroups, and the rendered timing values."""

    cluster: h.Cluster
    cgroups: partition.PodCgroups | None
    settings: dict[str, Any] = field(default_factory=dict)
    quick: bool = False  # shorter etcd outages (the test); the bench keeps them at a full key lifetime

    @property
    def ttl(self) -> int:
        return int(self.settings["ttl"])

    @property
    def loop_wait(self) -> int:
        return int(self.settings["loop_wait"])

    @property
    def retry_timeout(self) -> int:
        return int(self.settings["retry_timeout"])


@contextlib.contextmanager
def context(objects: list[Any], timeout: float = 120, *, quick: bool = False) -> Iterator[Context]:
    """A running cluster (3 etcd, 3 Patroni), every daemon in its pod's cgroup; everything stopped and
    removed on exit (also the cgroups of an attempt that failed to bind and was retried on a new block)."""
    made: list[partition.PodCgroups] = []

    def make() -> h.Cluster:
        cluster = h.Cluster(objects)
        if partition.unavailable(cgroups=True) is None:  # else no partitions (leader_partitioned fails)
            made.append(pod_cgroups(cluster))
        return cluster
    try:
        cluster = h.started(make, lambda c: h.start_all(c, timeout))
        with cluster:
            try:
                yield Context(cluster, made[-1] if made else None, dcs(cluster), quick)
            finally:
                cluster.stop()
    finally:
        with contextlib.ExitStack() as cleanups:  # every one runs, even when one raises
            for cgroups in made:
                cleanups.callback(cgroups.cleanup)


# Patroni's timers scaled down for the tests (bench/faults_postgres.py keeps the production ones): still
# loop_wait + 2 x retry_timeout <= ttl.
TEST_TIMER_VALUES = {"ttl": 10, "loopWait": 2, "retryTimeout": 4}  # the chart's patroni.* keys
TEST_TIMERS = [f"patroni.{key}={value}" for key, value in TEST_TIMER_VALUES.items()]


@contextlib.contextmanager
def matrix_context(workdir: Path) -> Iterator[Context]:
    """The fault tests' cluster: the production values (bench/faults_postgres.production_values, backups off)
    with TEST_TIMERS and quick etcd outages. On exit, no partition rule and no pod cgroup may be left."""
    sys.path.insert(0, str(h.ROOT / "bench"))
    import faults_postgres

    values = faults_postgres.production_values(workdir)
    with context(h.render([values], TEST_TIMERS), quick=True) as made:
        yield made
    left = partition.leftover_rules()
    assert left == [], f"partition rules left behind: {left}"
    assert made.cgroups is not None and not (made.cgroups.root / made.cgroups.base).exists(), "pod cgroups left"


def matrix_fixture(tmp_path_factory: Any) -> Iterator[Context]:
    """The body of the fault test files' module fixture (each file keeps its own, so that its tests share one
    cluster on one worker): skips without the daemons or cgroup v2 partitions, else :func:`matrix_context`."""
    import pytest

    from tests.conftest import require_binaries

    require_binaries(*h.BINARIES, "iptables")
    if reason := partition.unavailable(cgroups=True):
        pytest.skip(reason)
    with matrix_context(tmp_path_factory.mktemp("values")) as made:
        yield made


def assert_goal(result: dict[str, Any], bound: float) -> None:
    """The goal of every fault: enough writes to prove anything, no acknowledged write lost, never two nodes
    accepting writes at once, writes acknowledged again within ``bound`` seconds."""
    assert result["acked_writes"] > 50, f"too few writes to prove anything: {result}"
    assert result["acked_lost"] == 0, f"acknowledged writes lost: {result}"
    assert result["dual_write_window_s"] <= 0, f"two nodes accepted writes at once: {result}"
    assert result["recovery_s"] < bound, f"writes were not acknowledged again within {bound} s: {result}"


def leader_loss_bound(ctx: Context) -> float:
    """The leader key expires after ttl; the next HA loop (loop_wait) promotes; plus routing and a loaded host."""
    return ctx.ttl + 2 * ctx.loop_wait + 8


class Run:
    """One fault under load: ``with Run(ctx, name, run) as r: r.fault(); ...; r.recovered()``; ``r.result``."""

    def __init__(self, ctx: Context, name: str, run: int, warmup_acks: int = 50) -> None:
        self.ctx, self.name, self.run = ctx, name, run
        self.cluster = ctx.cluster
        self.leader = self.cluster.wait_healthy(120)
        if self.cluster.endpoints("-primary") != [self.leader]:
            self.cluster.wait("the -primary Service to select the leader",
                              lambda: self.cluster.endpoints("-primary") == [self.leader], 30)
        self.load = Load(self.cluster, f"fault_{name}_{run}")
        self.sampler = h.RoutingSampler(self.cluster)
        self.warmup_acks = warmup_acks
        self.fault_at = 0.0
        self.result: dict[str, Any] = {}
        self.extras: dict[str, Any] = {}

    def __enter__(self) -> Self:
        self.load.start()
        self.sampler.__enter__()
        if not self.load.wait_acks(self.warmup_acks, timeout=60):
            raise RuntimeError(f"{self.name}: the service client could not write before the fault "
                               f"({self.load.errors})")
        return self

    def fault(self) -> float:
        self.fault_at = time.monotonic()
        return self.fault_at

    def resumed(self, n: int = 20, timeout: float = 90) -> bool:
        """Wait until ``n`` service writes were acknowledged after now; then the service client settles to its
        slower pace (:meth:`Load.settle`)."""
        back = self.load.wait_acks(n, since=time.monotonic(), timeout=timeout)
        self.load.settle()
        return back

    def __exit__(self, exc_type: object, *exc: object) -> None:
        end = time.monotonic()
        self.load.stop()
        self.sampler.__exit__(None)
        if exc_type is None:
            self.result = {"fault": self.name, "run": self.run,
                           **summarize(self.cluster, self.load, self.sampler, self.fault_at or end, end),
                           **self.extras}


def _new_routed_leader(cluster: h.Cluster, old: int) -> Callable[[], int | None]:
    def check() -> int | None:
        lead = cluster.leader()
        if lead is not None and lead != old and cluster.endpoints("-primary") == [lead]:
            return lead + 1
        return None
    return check


def leader_pod_killed(ctx: Context, run: int) -> dict[str, Any]:
    """SIGKILL Patroni and PostgreSQL of the leader together (a pod/container kill), then restart the pod."""
    c = ctx.cluster
    with Run(ctx, "leader_pod_killed", run) as r:
        old = r.leader
        sync = sync_standby(c, old)
        r.fault()
        c.kill_node(old)
        new = c.wait("a new routed leader", _new_routed_leader(c, old), ctx.ttl + 60, 0.1) - 1
        r.extras["promoted_s"] = round(time.monotonic() - r.fault_at, 2)
        r.resumed()
        rejoin = h.wait_rejoined(c, old)
        r.extras.update(promoted=c.pg_pods[new].name, promoted_was_sync=new == sync,
                        old_leader_rewind=rejoin["rewind"], old_leader_writable_seen=rejoin["writable_seen"])
    return r.result


def patroni_killed(ctx: Context, run: int) -> dict[str, Any]:
    """SIGKILL the leader's Patroni only; its PostgreSQL keeps running as a primary with no one to demote it.
    Afterwards the container restart (Patroni is the container's PID 1, so on Kubernetes its death ends the
    postmaster too) is done here as a kill of the orphaned postmaster plus a Patroni start."""
    c = ctx.cluster
    with Run(ctx, "patroni_killed", run) as r:
        old = r.leader
        sync = sync_standby(c, old)
        postmaster = c.postmaster_pid(old)
        r.fault()
        kill_patroni_only(c, old)
        new = c.wait("a new routed leader", _new_routed_leader(c, old), ctx.ttl + 60, 0.1) - 1
        r.extras["promoted_s"] = round(time.monotonic() - r.fault_at, 2)
        r.resumed()
        # The orphan: still running, not in recovery, but its synchronous standby is gone, so no COMMIT returns.
        orphan_alive = bool(postmaster and h._pid_alive(postmaster))
        in_recovery = None
        with contextlib.suppress(Exception):
            in_recovery = h.query(c.superuser_dsn(c.pg_pods[old].ip), "SELECT pg_is_in_recovery()")[0][0]
        time.sleep(3)  # the direct client keeps trying the orphan meanwhile
        r.extras.update(promoted=c.pg_pods[new].name, promoted_was_sync=new == sync,
                        orphan_postmaster_running=orphan_alive, orphan_in_recovery=in_recovery)
        c.kill_node(old)  # the container restart
        rejoin = h.wait_rejoined(c, old)
        r.extras.update(old_leader_rewind=rejoin["rewind"], old_leader_writable_seen=rejoin["writable_seen"])
    return r.result


# What a leader's HA loop logs when it cannot reach etcd (patroni/ha.py _handle_dcs_error, Patroni 3.0.2): it demotes
# itself (async, or from the main thread when the executor is busy) or, with failsafe_mode and every member
# answering, runs on as the leader.
LEADER_DCS_VERDICTS = ("demoting self", "demoted self", "continue to run as a leader")


def leader_partitioned(ctx: Context, run: int) -> dict[str, Any]:
    """Cut the leader off from every etcd member and both replicas (both directions, by cgroup) while the
    clients (service ClusterIP, direct clients) still reach it; heal after a new leader is routed."""
    c = ctx.cluster
    with Run(ctx, "leader_partitioned", run) as r:
        old = r.leader
        others = [i for i in range(len(c.pg_pods)) if i != old]
        cg = ctx.cgroups
        if cg is None:
            raise RuntimeError("partitions need root and a writable cgroup v2 mount")
        pod = [p.name for p in c.pg_pods]
        rules = [(cg.path(pod[old]), p.ip) for p in c.etcd_pods] + \
                [(cg.path(pod[old]), c.pg_pods[i].ip) for i in others] + \
                [(cg.path(pod[i]), c.pg_pods[old].ip) for i in others]
        offset = log_size(c, old)
        demoted: list[float] = []
        routed = _new_routed_leader(c, old)

        def promoted_elsewhere() -> int | None:
            if not demoted and c.rest(old, "/primary") != 200:
                demoted.append(time.monotonic())
            return routed()
        with partition.partition(cgroup_drop=rules) as tag:
            r.fault()
            new = c.wait("a new routed leader", promoted_elsewhere, ctx.ttl + 60, 0.1) - 1
            r.extras["promoted_s"] = round(time.monotonic() - r.fault_at, 2)
            r.resumed()
            # The old leader must have stopped being a primary on its own (it cannot renew its key).
            c.wait("the partitioned leader to demote", lambda: (promoted_elsewhere(), bool(demoted))[1], 30)
            r.extras["old_leader_demoted_s"] = round(demoted[0] - r.fault_at, 2)
            # /primary answers 503 once the leader's own lease lapses, which can come before its HA loop has
            # finished the failsafe POSTs to the replicas (2 s timeout each, patroni/ha.py call_failsafe_member)
            # and logged its decision. Keep the partition until that line is written.
            c.wait("the partitioned leader to log its decision",
                   lambda: any(m in log_since(c, old, offset) for m in LEADER_DCS_VERDICTS), 30, 0.2)
            r.extras["old_leader_decision_logged_s"] = round(time.monotonic() - r.fault_at, 2)
        r.extras["rules_left"] = len(partition.leftover_rules(tag=tag))
        log = log_since(c, old, offset)
        r.extras["old_leader_log"] = [m for m in LEADER_DCS_VERDICTS + ("failsafe", "DCS is not accessible")
                                      if m in log]
        c.wait("the old leader to rejoin as a replica", lambda: c.rest(old, "/replica") == 200, 90)
        r.extras["promoted"] = c.pg_pods[new].name
    return r.result


def etcd_member_lost(ctx: Context, run: int) -> dict[str, Any]:
    """SIGKILL the etcd raft leader (the worst member to lose); restart it after 2 x ttl."""
    c = ctx.cluster
    with Run(ctx, "etcd_member_lost", run) as r:
        victim = etcd_leader(c)
        victim = 0 if victim is None else victim
        r.fault()
        etcd_kill(c, victim)
        time.sleep(3 * ctx.loop_wait if ctx.quick else ctx.ttl + ctx.loop_wait)  # >= 2 key renewals / a lifetime
        r.extras.update(etcd_killed=c.etcd_pods[victim].name, leader_kept=c.leader() == r.leader)
        etcd_restart(c, victim)
        c.wait("etcd healthy again", lambda: etcd_healthy(c), 60)
        r.resumed(10)
    return r.result


def etcd_quorum_lost(ctx: Context, run: int, *, failsafe: bool | None = None) -> dict[str, Any]:
    """SIGKILL two of three etcd members and keep them down for ttl + 2 x loop_wait; then restart them.
    ``failsafe``: set failsafe_mode in the live /config first (None: the rendered value, production)."""
    c = ctx.cluster
    name = "etcd_quorum_lost" if failsafe is None else f"etcd_quorum_lost_failsafe_{'on' if failsafe else 'off'}"
    leader = c.wait_healthy(120)
    rendered = bool(ctx.settings.get("failsafe_mode", False))
    if failsafe is not None and failsafe != rendered:
        patch_config(c, leader, {"failsafe_mode": failsafe})
        c.wait("failsafe_mode live on every member", lambda: all(
            bool(live_config(c, i).get("failsafe_mode")) == failsafe for i in range(len(c.pg_pods))), 30)
        time.sleep(ctx.loop_wait + 1)  # the leader writes the /failsafe key in its next loop
    effective = rendered if failsafe is None else failsafe
    try:
        with Run(ctx, name, run) as r:
            old = r.leader
            victims = [i for i in range(len(c.etcd_pods))][:2]
            offsets = {i: log_size(c, i) for i in range(len(c.pg_pods))}
            r.fault()
            for v in victims:
                etcd_kill(c, v)
            hold = ctx.ttl + (1 if ctx.quick else 2) * ctx.loop_wait  # past the key's expiry either way
            roles: list[list[str]] = []
            end = time.monotonic() + hold
            while time.monotonic() < end:
                roles.append([str((c.patroni_state(i) or {}).get("role", "?")) for i in range(len(c.pg_pods))])
                time.sleep(1)
            primaries_seen = max(sum(role in PRIMARY_ROLES for role in sample) for sample in roles)
            r.extras.update(failsafe_mode=effective, etcd_down_s=hold,
                            leader_still_primary=c.rest(old, "/primary") == 200,
                            max_primaries_seen=primaries_seen,
                            writes_during_outage=r.load.service_acks(r.fault_at))
            for v in victims:
                etcd_restart(c, v)
            c.wait("etcd healthy again", lambda: etcd_healthy(c), 60)
            r.resumed(10)
            logs = {c.pg_pods[i].name: log_since(c, i, offsets[i]) for i in range(len(c.pg_pods))}
            r.extras["leader_log"] = [m for m in ("continue to run as a leader because failsafe mode",
                                                  "demoting self because DCS is not accessible")
                                      if m in logs[c.pg_pods[old].name]]
    finally:
        if failsafe is not None and failsafe != rendered:
            leader = c.wait_healthy(120)
            patch_config(c, leader, {"failsafe_mode": rendered})
    return r.result


def sync_standby_killed(ctx: Context, run: int) -> dict[str, Any]:
    """SIGKILL the synchronous standby's pod under load; the other replica must take the sync role."""
    c = ctx.cluster
    with Run(ctx, "sync_standby_killed", run) as r:
        sync = sync_standby(c, r.leader)
        r.fault()
        c.kill_node(sync)

        def new_sync() -> int | None:
            with contextlib.suppress(RuntimeError):
                s = sync_standby(c, r.leader)
                return s + 1 if s != sync else None
            return None
        replacement = c.wait("another synchronous standby", new_sync, ctx.loop_wait + ctx.retry_timeout + 30) - 1
        r.extras["new_sync_s"] = round(time.monotonic() - r.fault_at, 2)
        r.resumed()
        rejoin = h.wait_rejoined(c, sync)
        r.extras.update(killed=c.pg_pods[sync].name, new_sync=c.pg_pods[replacement].name,
                        leader_kept=c.leader() == r.leader, rejoined_writable_seen=rejoin["writable_seen"])
    return r.result


def lagging_replica(ctx: Context, run: int) -> dict[str, Any]:
    """SIGSTOP the asynchronous replica's WAL receiver, write until its lag passes maximum_lag_on_failover,
    kill the leader's pod: the lagging replica must not be promoted. SIGCONT and rejoin afterwards."""
    c = ctx.cluster
    max_lag = int(ctx.settings["maximum_lag_on_failover"])
    with Run(ctx, "lagging_replica", run) as r:
        old = r.leader
        sync = sync_standby(c, old)
        lagging = next(i for i in range(len(c.pg_pods)) if i not in (old, sync))
        receiver = c.wait("the WAL receiver", lambda: walreceiver_pid(c, lagging), 30)
        offset = log_size(c, lagging)
        os.kill(receiver, signal.SIGSTOP)
        try:
            execute(r.load.service_dsn, "CREATE TABLE IF NOT EXISTS lag_filler (id bigint, pad text)")
            size = max(4 * max_lag // 1000, 2000)
            execute(r.load.service_dsn, "INSERT INTO lag_filler SELECT g, repeat('x', 1000) "
                                        "FROM generate_series(1, %s) g", (size,))

            def lag() -> int | None:
                for m in cluster_members(c, old):
                    if m["name"] == c.pg_pods[lagging].name and isinstance(m.get("lag"), int) and m["lag"] > max_lag:
                        return int(m["lag"])
                return None
            r.extras["lag_bytes_before_kill"] = c.wait("Patroni to see the lag", lag, ctx.loop_wait * 3 + 15)
            r.fault()
            c.kill_node(old)
            new = c.wait("a new routed leader", _new_routed_leader(c, old), ctx.ttl + 60, 0.1) - 1
            r.extras["promoted_s"] = round(time.monotonic() - r.fault_at, 2)
            r.resumed()
            # Give the lagging one the rest of a leader race to misbehave, then check once more.
            time.sleep(ctx.loop_wait)
            r.extras.update(promoted=c.pg_pods[new].name, promoted_was_sync=new == sync,
                            lagging=c.pg_pods[lagging].name, lagging_promoted=c.rest(lagging, "/primary") == 200
                            or new == lagging)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(receiver, signal.SIGCONT)
        log = log_since(c, lagging, offset)
        r.extras["lagging_log"] = [m for m in ("exceeds maximum replication lag", "not allowed to promote",
                                               "following a different leader", "no action") if m in log][:3]
        h.wait_rejoined(c, old)
        c.wait_healthy(120)
    return r.result


def zone_lost(ctx: Context, run: int) -> dict[str, Any]:
    """A zone of a three-zone spread (the production topology spread puts one PostgreSQL pod and one etcd member
    in each zone): the leader's pod and the etcd raft leader SIGKILLed at the same instant. Both come back (the
    zone returns, or their pods are rescheduled with their volumes) once a new leader is routed."""
    c = ctx.cluster
    with Run(ctx, "zone_lost", run) as r:
        old = r.leader
        sync = sync_standby(c, old)
        victim = etcd_leader(c)
        victim = 0 if victim is None else victim
        r.fault()
        c.kill_node(old)
        etcd_kill(c, victim)
        new = c.wait("a new routed leader", _new_routed_leader(c, old), ctx.ttl + 60, 0.1) - 1
        r.extras["promoted_s"] = round(time.monotonic() - r.fault_at, 2)
        r.resumed()
        etcd_restart(c, victim)
        c.wait("etcd healthy again", lambda: etcd_healthy(c), 60)
        rejoin = h.wait_rejoined(c, old)
        r.extras.update(promoted=c.pg_pods[new].name, promoted_was_sync=new == sync,
                        etcd_killed=c.etcd_pods[victim].name, old_leader_rewind=rejoin["rewind"],
                        old_leader_writable_seen=rejoin["writable_seen"])
    return r.result


def leader_and_sync_lost(ctx: Context, run: int) -> dict[str, Any]:
    """The leader's pod and its synchronous standby's pod SIGKILLed at the same instant (a zone that held two of
    the three pods, or two zones lost). Synchronous mode must not promote the remaining asynchronous replica (it
    may lack acknowledged commits): no primary for ttl + 2 x loop_wait. Then both pods come back (the zone
    returns, or the pods are rescheduled with their volumes): ``restart_to_writes_s`` is the time from their
    start until writes are acknowledged again."""
    c = ctx.cluster
    with Run(ctx, "leader_and_sync_lost", run) as r:
        old = r.leader
        sync = sync_standby(c, old)
        rest = next(i for i in range(len(c.pg_pods)) if i not in (old, sync))
        r.fault()
        c.kill_node(old)
        c.kill_node(sync)
        hold = ctx.ttl + 2 * ctx.loop_wait
        promoted = False
        end = time.monotonic() + hold
        while time.monotonic() < end:
            promoted = promoted or c.rest(rest, "/primary") == 200
            time.sleep(0.5)
        r.extras.update(down_s=hold, remaining=c.pg_pods[rest].name, async_replica_promoted=promoted,
                        writes_while_down=r.load.service_acks(r.fault_at))
        started = time.monotonic()
        c.start_patroni(old)
        c.start_patroni(sync)

        def routed() -> int | None:
            lead = c.leader()
            return lead + 1 if lead is not None and c.endpoints("-primary") == [lead] else None
        new = c.wait("a routed leader after the restart", routed, ctx.ttl + 90, 0.1) - 1
        r.resumed()
        r.extras.update(restart_to_writes_s=round(time.monotonic() - started, 2), leader=c.pg_pods[new].name,
                        leader_was=("old leader" if new == old else "old sync standby" if new == sync
                                    else "the asynchronous replica"))
        c.wait_healthy(120)
    return r.result


FAULTS: dict[str, Callable[[Context, int], dict[str, Any]]] = {
    "leader_pod_killed": leader_pod_killed,
    "patroni_killed": patroni_killed,
    "leader_partitioned": leader_partitioned,
    "etcd_member_lost": etcd_member_lost,
    "etcd_quorum_lost": etcd_quorum_lost,
    "sync_standby_killed": sync_standby_killed,
    "lagging_replica": lagging_replica,
    "zone_lost": zone_lost,
    "leader_and_sync_lost": leader_and_sync_lost,
}
