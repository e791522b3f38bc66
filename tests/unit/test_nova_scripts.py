"""The scripts charts/nova runs (files/*.sh, taken from the rendered `nova-scripts` ConfigMap, never a copy),
run for real on 127.0.0.1: the bounded dependency wait, and the helm test checks of a service's Redis and
PostgreSQL credentials against a real redis-server + redis-sentinel and a real PostgreSQL, using the
passwords and env of one render."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHARTS, render, require_binaries

CHART = CHARTS / "nova"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.runtime


def rendered() -> list:
    return render(CHART)


def script(name: str, into: Path) -> Path:
    cm = next(o for o in rendered() if o.kind == "ConfigMap" and o.name == "nova-scripts")
    path = into / name
    path.write_text(cm["data"][name] + "\n")
    path.chmod(0o755)
    return path


def secret(name: str) -> dict[str, str]:
    obj = next(o for o in rendered() if o.kind == "Secret" and o.name == name)
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


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


# ---------------------------------------------------------------------------------------------- check-redis.sh


@pytest.fixture(scope="module")
def redis_with_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """redis-server (redis-password) and redis-sentinel (its own sentinel-password) on 127.0.0.1, with the
    rendered passwords, the way nova-redis configures them."""
    require_binaries("redis-server", "redis-sentinel", "nc")
    tmp_path = tmp_path_factory.mktemp("redis")
    password = secret("nova-redis-credentials")["redis-password"]
    sentinel_password = secret("nova-redis-credentials")["sentinel-password"]
    ports = {"redis": free_port(), "sentinel": free_port()}
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {ports['sentinel']}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor nova 127.0.0.1 {ports['redis']} 1\n"
                    f"sentinel auth-pass nova {password}\nrequirepass {sentinel_password}\n")
    procs = [subprocess.Popen(["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                               "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_port(ports["redis"])
        procs.append(subprocess.Popen(["redis-sentinel", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(ports["sentinel"])
        yield ports
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def redis_env(ports: dict[str, int], service_secret: dict[str, str]) -> dict[str, str]:
    env = dict(service_secret)
    env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(ports["redis"]),
               REDIS_SENTINEL_ADDRS=f"127.0.0.1:{ports['sentinel']}", CHECK_ATTEMPTS="1")
    return env


def test_redis_check_passes_with_the_password_the_service_receives(tmp_path: Path,
                                                                   redis_with_sentinel: dict[str, int]) -> None:
    env = redis_env(redis_with_sentinel, secret("nova-user-service"))
    assert env["REDIS_SENTINEL_MASTER"] == "nova"
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUTH and PING ok" in result.stdout and "knows master set nova" in result.stdout


def test_redis_check_fails_with_a_wrong_password(tmp_path: Path, redis_with_sentinel: dict[str, int]) -> None:
    env = redis_env(redis_with_sentinel, secret("nova-user-service"))
    env["REDIS_PASSWORD"] = "not-the-password"
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 1
    assert "refused" in result.stderr


def test_redis_check_fails_for_an_unknown_master_set(tmp_path: Path, redis_with_sentinel: dict[str, int]) -> None:
    env = redis_env(redis_with_sentinel, secret("nova-user-service"))
    env["REDIS_SENTINEL_MASTER"] = "other"
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 1
    assert "no master for other" in result.stderr


def test_redis_check_fails_when_sentinel_refuses_its_password(tmp_path: Path,
                                                              redis_with_sentinel: dict[str, int]) -> None:
    env = redis_env(redis_with_sentinel, secret("nova-user-service"))
    env["REDIS_SENTINEL_PASSWORD"] = env["REDIS_PASSWORD"]  # the data password is not Sentinel's
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 1
    assert "refused the password" in result.stderr


def test_redis_check_authenticates_a_services_acl_user_and_sentinel_with_its_own_password(
    tmp_path: Path, redis_with_sentinel: dict[str, int]
) -> None:
    objs = render(CHART, set_values=["redis.aclUsers.user_service.keyPrefix=user:",
                                     "services.microservices.user-service.redis.user=user_service"])
    own = next(o for o in objs if o.kind == "Secret" and o.name == "nova-user-service")
    env = redis_env(redis_with_sentinel, {k: base64.b64decode(v).decode() for k, v in own["data"].items()})
    # This second render generated new passwords: hand over the Sentinel password the fixture runs with.
    env["REDIS_SENTINEL_PASSWORD"] = secret("nova-user-service")["REDIS_SENTINEL_PASSWORD"]
    admin = secret("nova-redis-credentials")["redis-password"]
    rules = f"on >{env['REDIS_PASSWORD']} ~{env['REDIS_KEY_PREFIX']}* +@all -@admin -@dangerous"
    subprocess.run(["redis-cli", "-p", str(redis_with_sentinel["redis"]), "--no-auth-warning", "-a", admin,
                    "ACL", "SETUSER", env["REDIS_USERNAME"], *rules.split()], check=True, capture_output=True)
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUTH and PING ok" in result.stdout and "knows master set nova" in result.stdout
    env["REDIS_PASSWORD"] = admin  # the default user's password is not user_service's
    assert run_script(script("check-redis.sh", tmp_path), env).returncode == 1
    # Without a Sentinel password an ACL user's check cannot ask Sentinel and says so.
    env = {k: v for k, v in env.items() if k != "REDIS_SENTINEL_PASSWORD"}
    env["REDIS_PASSWORD"] = base64.b64decode(own["data"]["REDIS_PASSWORD"]).decode()
    result = run_script(script("check-redis.sh", tmp_path), env)
    assert result.returncode == 0 and "skipped for ACL user user_service" in result.stdout


# ---------------------------------------------------------------------------------------------- check-postgres.sh


def as_postgres(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr or result.stdout}")
    return result


@pytest.fixture(scope="module")
def postgres_with_user_service() -> Iterator[int]:
    """A PostgreSQL on 127.0.0.1 with user-service's login, database and schema, password from the render."""
    require_binaries(str(PG_BIN / "initdb"), str(PG_BIN / "pg_ctl"), "psql")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    base = Path(tempfile.mkdtemp(prefix="nova-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    password = secret("nova-postgres-credentials")["user_service-password"]
    try:
        as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256"])
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "-l", str(base / "log"), "start",
                     "-o", f"-h 127.0.0.1 -p {port} -k {base}"])
        for sql in (f"CREATE ROLE user_service LOGIN PASSWORD '{password}'", "CREATE DATABASE nova_core"):
            as_postgres(["psql", "-X", "-h", str(base), "-p", str(port), "-U", "postgres", "-d", "postgres",
                         "-v", "ON_ERROR_STOP=1", "-c", sql])
        as_postgres(["psql", "-X", "-h", str(base), "-p", str(port), "-U", "postgres", "-d", "nova_core",
                     "-v", "ON_ERROR_STOP=1", "-c", ("CREATE SCHEMA users AUTHORIZATION user_service;"
                     " CREATE SCHEMA auth; REVOKE ALL ON SCHEMA auth FROM PUBLIC;")])
        yield port
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
                           + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def postgres_env(port: int) -> dict[str, str]:
    env = secret("nova-user-service")
    env.update(DATABASE_HOST="127.0.0.1", DATABASE_READ_HOST="127.0.0.1", DATABASE_PORT=str(port),
               CHECK_ATTEMPTS="1", HOME="/tmp")
    return env


def test_postgres_check_passes_with_the_login_the_service_receives(tmp_path: Path,
                                                                   postgres_with_user_service: int) -> None:
    env = postgres_env(postgres_with_user_service)
    assert (env["DATABASE_USER"], env["DATABASE_NAME"], env["DATABASE_SCHEMA"]) == ("user_service", "nova_core",
                                                                                     "users")
    result = run_script(script("check-postgres.sh", tmp_path), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "user_service logs in to nova_core" in result.stdout


def test_postgres_check_fails_with_a_wrong_password(tmp_path: Path, postgres_with_user_service: int) -> None:
    env = postgres_env(postgres_with_user_service)
    env["DATABASE_PASSWORD"] = "wrong"
    result = run_script(script("check-postgres.sh", tmp_path), env)
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr


def test_postgres_check_fails_when_the_login_may_not_use_its_schema(tmp_path: Path,
                                                                   postgres_with_user_service: int) -> None:
    env = postgres_env(postgres_with_user_service)
    env["DATABASE_SCHEMA"] = "auth"
    result = run_script(script("check-postgres.sh", tmp_path), env)
    assert result.returncode == 1
    assert "may not use schema auth" in result.stderr


def test_every_rendered_script_is_posix_sh_that_passes_shellcheck(tmp_path: Path) -> None:
    require_binaries("shellcheck")
    cm = next(o for o in rendered() if o.kind == "ConfigMap" and o.name == "nova-scripts")
    assert sorted(cm["data"]) == ["check-http.sh", "check-postgres.sh", "check-redis.sh", "wait-for.sh"]
    paths = [script(name, tmp_path) for name in cm["data"]]
    result = subprocess.run(["shellcheck", "--shell=sh", *map(str, paths)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout
