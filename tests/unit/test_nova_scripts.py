"""The scripts charts/nova runs (files/*.sh, taken from the rendered `nova-scripts` ConfigMap, never a copy).

Without daemons: the bounded dependency wait against plain sockets, and shellcheck. With daemons (marked
`runtime`): the helm test checks of a service's Redis and PostgreSQL credentials, against Redis, Sentinel and
HAProxy (tests/runtime/redis_harness.py) and etcd + Patroni/PostgreSQL with the rendered bootstrap Job applied
(tests/runtime/postgres_harness.py), each started from a render of the umbrella chart: the subchart's rendered
ConfigMaps, the ACL users and the bootstrap plan come from it, and the services' Secrets of that same render
hold the passwords. The daemons run on an address block claimed for the run (tests/runtime/netutil.py), so
runs never collide."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHARTS, render, require_binaries
from tests.runtime import netutil
from tests.runtime import postgres_harness as pg
from tests.runtime import redis_harness as rh
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
# user-service gets its own Redis ACL user (confined to user:*); the other services use the default user.
ACL = ("redis.aclUsers.user_service.keyPrefix=user:", "services.microservices.user-service.redis.user=user_service")
# One PostgreSQL node (so no synchronous standby) and one etcd member: these tests are about the credentials,
# not about failover.
SMALL_POSTGRES = ("postgres.replicas=1", "postgres.etcd.replicas=1", "postgres.patroni.synchronousMode=false")


def rendered() -> list[KubeObject]:
    return render(CHART)


def script(name: str, into: Path, objects: list[KubeObject] | None = None) -> Path:
    cm = next(o for o in objects or rendered() if o.kind == "ConfigMap" and o.name == "nova-scripts")
    path = into / name
    path.write_text(cm["data"][name] + "\n")
    path.chmod(0o755)
    return path


def secret_of(objects: list[KubeObject], name: str) -> dict[str, str]:
    obj = next(o for o in objects if o.kind == "Secret" and o.name == name)
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(path: Path, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(path)], env={"PATH": os.environ["PATH"], **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


# ---------------------------------------------------------------------------------------------- wait-for.sh


def test_wait_for_returns_once_every_dependency_accepts_connections(tmp_path: Path, listener: int) -> None:
    require_binaries("nc")
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    try:
        result = run_script(script("wait-for.sh", tmp_path), {
            "WAIT_FOR": f"127.0.0.1:{listener} 127.0.0.1:{other.getsockname()[1]}", "WAIT_TIMEOUT_SECONDS": "10"})
    finally:
        other.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("is up") == 2


def test_wait_for_gives_up_after_its_timeout_so_the_kubelet_retries(tmp_path: Path) -> None:
    require_binaries("nc")
    started = time.monotonic()
    result = run_script(script("wait-for.sh", tmp_path), {
        "WAIT_FOR": f"127.0.0.1:{free_port()}", "WAIT_TIMEOUT_SECONDS": "2", "WAIT_INTERVAL_SECONDS": "1"})
    assert result.returncode == 1
    assert "giving up" in result.stderr
    assert time.monotonic() - started < 10, "the wait must be bounded by WAIT_TIMEOUT_SECONDS"


def test_wait_for_lets_a_service_start_degraded_after_the_timeout(tmp_path: Path, listener: int) -> None:
    require_binaries("nc")
    result = run_script(script("wait-for.sh", tmp_path), {
        "WAIT_FOR": f"127.0.0.1:{listener} 127.0.0.1:{free_port()}", "WAIT_TIMEOUT_SECONDS": "1",
        "WAIT_INTERVAL_SECONDS": "1", "WAIT_ON_TIMEOUT": "continue"})
    assert result.returncode == 0, result.stderr
    assert "starting degraded" in result.stdout


# ---------------------------------------------------------------------------------------------- the stack


def subchart(objects: list[KubeObject], alias: str) -> list[KubeObject]:
    """The objects of subchart ``alias`` in an umbrella render, plus the Secrets its objects refer to (the
    umbrella renders the credentials)."""
    own = [o for o in objects if (o.source or "").startswith(f"nova/charts/{alias}/")]
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.add(node["secretKeyRef"]["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for o in own:
        walk(o.obj)
    return own + [o for o in objects if o.kind == "Secret" and o.name in refs]


# ---------------------------------------------------------------------------------------------- check-redis.sh


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[list[KubeObject], rh.RedisHarness]]:
    """An umbrella render on a claimed address block, and its nova-redis (3 pods of redis + Sentinel, and
    HAProxy) started from the rendered ConfigMaps and env; again on a new block when a daemon cannot bind."""
    require_binaries(*rh.BINARIES, "nc")
    workdir = tmp_path_factory.mktemp("redis")
    blocks: list[netutil.AddressBlock] = []
    renders: list[list[KubeObject]] = []

    def make() -> rh.RedisHarness:
        blocks.append(netutil.claim_block())
        renders.append(render(CHART, set_values=[*rh.loopback_values(blocks[-1], prefix="redis."), *ACL]))
        return rh.RedisHarness(objects=subchart(renders[-1], "redis"), block=blocks[-1], workdir=workdir)

    def start(harness: rh.RedisHarness) -> None:
        harness.start_all()
        master = harness.wait_stable()
        rh.wait_until(lambda: harness.proxy_status().get(f"node{master}") == "UP", 20,
                      "HAProxy to mark the master UP")

    try:
        harness = rh.started(make, start)
        try:
            yield renders[-1], harness
        finally:
            harness.close()
    finally:
        for claimed in blocks:
            claimed.release()


@pytest.fixture
def stack(redis_stack: tuple[list[KubeObject], rh.RedisHarness]) -> list[KubeObject]:
    return redis_stack[0]


@pytest.fixture
def redis_pods(redis_stack: tuple[list[KubeObject], rh.RedisHarness]) -> rh.RedisHarness:
    return redis_stack[1]


def redis_env(pods: rh.RedisHarness, service_secret: dict[str, str]) -> dict[str, str]:
    """A service's Secret, with the in-cluster addresses replaced by the harness's (the -master Service is
    HAProxy, the Sentinels are the pods)."""
    env = dict(service_secret)
    env.update(REDIS_HOST=pods.proxy_address, REDIS_PORT=str(pods.redis_port), CHECK_ATTEMPTS="1",
               REDIS_SENTINEL_ADDRS=",".join(f"{a}:{pods.sentinel_port}" for a in pods.addresses))
    return env


@pytest.mark.runtime
def test_redis_check_passes_with_the_password_the_service_receives(
        tmp_path: Path, stack: list[KubeObject], redis_pods: rh.RedisHarness) -> None:
    env = redis_env(redis_pods, secret_of(stack, "nova-auth-service"))
    assert env["REDIS_SENTINEL_MASTER"] == redis_pods.master_set and "REDIS_USERNAME" not in env
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUTH and PING ok" in result.stdout and f"knows master set {redis_pods.master_set}" in result.stdout


@pytest.mark.runtime
def test_redis_check_fails_with_a_wrong_password(tmp_path: Path, stack: list[KubeObject],
                                                 redis_pods: rh.RedisHarness) -> None:
    env = redis_env(redis_pods, secret_of(stack, "nova-auth-service"))
    env["REDIS_PASSWORD"] = "not-the-password"
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 1
    assert "refused" in result.stderr


@pytest.mark.runtime
def test_redis_check_fails_for_an_unknown_master_set(tmp_path: Path, stack: list[KubeObject],
                                                     redis_pods: rh.RedisHarness) -> None:
    env = redis_env(redis_pods, secret_of(stack, "nova-auth-service"))
    env["REDIS_SENTINEL_MASTER"] = "other"
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 1
    assert "no master for other" in result.stderr


@pytest.mark.runtime
def test_redis_check_fails_when_sentinel_refuses_its_password(
        tmp_path: Path, stack: list[KubeObject], redis_pods: rh.RedisHarness) -> None:
    env = redis_env(redis_pods, secret_of(stack, "nova-auth-service"))
    env["REDIS_SENTINEL_PASSWORD"] = env["REDIS_PASSWORD"]  # the data password is not Sentinel's
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 1
    assert "refused the password" in result.stderr


@pytest.mark.runtime
def test_redis_check_authenticates_a_services_acl_user_and_sentinel_with_its_own_password(
        tmp_path: Path, stack: list[KubeObject], redis_pods: rh.RedisHarness) -> None:
    # user-service's ACL user is in the rendered Redis configuration (aclUsers), not added by this test.
    env = redis_env(redis_pods, secret_of(stack, "nova-user-service"))
    assert (env["REDIS_USERNAME"], env["REDIS_KEY_PREFIX"]) == ("user_service", "user:")
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUTH and PING ok" in result.stdout and f"knows master set {redis_pods.master_set}" in result.stdout
    own_password = env["REDIS_PASSWORD"]
    env["REDIS_PASSWORD"] = redis_pods.password or ""  # the default user's password is not user_service's
    assert run_script(script("check-redis.sh", tmp_path, stack), env).returncode == 1
    # Without a Sentinel password an ACL user's check cannot ask Sentinel and says so.
    env = {k: v for k, v in env.items() if k != "REDIS_SENTINEL_PASSWORD"}
    env["REDIS_PASSWORD"] = own_password
    result = run_script(script("check-redis.sh", tmp_path, stack), env)
    assert result.returncode == 0 and "skipped for ACL user user_service" in result.stdout


# ---------------------------------------------------------------------------------------------- check-postgres.sh


@pytest.fixture(scope="module")
def postgres_stack() -> Iterator[tuple[list[KubeObject], pg.Cluster]]:
    """An umbrella render and its nova-postgres (one etcd member, one Patroni + PostgreSQL node) with the
    rendered bootstrap Job applied: the databases, schemas and logins the services' Secrets name."""
    require_binaries(*pg.BINARIES)
    objects = render(CHART, set_values=[*pg.port_values("postgres."), *SMALL_POSTGRES])
    # Its own temp dir under the system one: pytest's tmp dirs are root-only, the daemons run as postgres.
    with pg.started(lambda: pg.Cluster(subchart(objects, "postgres")), pg.start_all) as cluster:
        done = cluster.run_bootstrap()
        assert done["returncode"] == 0, done["stderr"]
        yield objects, cluster


@pytest.fixture
def pg_stack(postgres_stack: tuple[list[KubeObject], pg.Cluster]) -> list[KubeObject]:
    return postgres_stack[0]


@pytest.fixture
def postgres_pods(postgres_stack: tuple[list[KubeObject], pg.Cluster]) -> pg.Cluster:
    return postgres_stack[1]


def postgres_env(cluster: pg.Cluster, stack: list[KubeObject]) -> dict[str, str]:
    env = secret_of(stack, "nova-user-service")
    primary = cluster.service_host("-primary")
    env.update(DATABASE_HOST=primary, DATABASE_READ_HOST=primary, DATABASE_PORT=str(cluster.port("postgresql")),
               CHECK_ATTEMPTS="1", HOME="/tmp")
    return env


@pytest.mark.runtime
def test_postgres_check_passes_with_the_login_the_service_receives(
        tmp_path: Path, pg_stack: list[KubeObject], postgres_pods: pg.Cluster) -> None:
    env = postgres_env(postgres_pods, pg_stack)
    assert (env["DATABASE_USER"], env["DATABASE_NAME"], env["DATABASE_SCHEMA"]) == ("user_service", "nova_core",
                                                                                     "users")
    result = run_script(script("check-postgres.sh", tmp_path, pg_stack), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "user_service logs in to nova_core" in result.stdout


@pytest.mark.runtime
def test_postgres_check_fails_with_a_wrong_password(tmp_path: Path, pg_stack: list[KubeObject],
                                                    postgres_pods: pg.Cluster) -> None:
    env = postgres_env(postgres_pods, pg_stack)
    env["DATABASE_PASSWORD"] = "wrong"
    result = run_script(script("check-postgres.sh", tmp_path, pg_stack), env)
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr


@pytest.mark.runtime
def test_postgres_check_fails_when_the_login_may_not_use_its_schema(
        tmp_path: Path, pg_stack: list[KubeObject], postgres_pods: pg.Cluster) -> None:
    env = postgres_env(postgres_pods, pg_stack)
    env["DATABASE_SCHEMA"] = "auth"  # auth-service's schema in the same database (the bootstrap plan's)
    result = run_script(script("check-postgres.sh", tmp_path, pg_stack), env)
    assert result.returncode == 1
    assert "may not use schema auth" in result.stderr


# ---------------------------------------------------------------------------------------------- shellcheck


def test_every_rendered_script_is_posix_sh_that_passes_shellcheck(tmp_path: Path) -> None:
    require_binaries("shellcheck")
    cm = next(o for o in rendered() if o.kind == "ConfigMap" and o.name == "nova-scripts")
    assert sorted(cm["data"]) == ["check-http.sh", "check-postgres.sh", "check-redis.sh", "wait-for.sh"]
    paths = [script(name, tmp_path) for name in cm["data"]]
    result = subprocess.run(["shellcheck", "--shell=sh", *map(str, paths)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout
