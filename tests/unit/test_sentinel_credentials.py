"""One credential chain for Sentinel: every client of a Sentinel port, in every profile, authenticates with
`sentinel-password`, or with the documented fallback (an existingSecret without that key keeps Sentinel on
`redis-password`, docs/secrets.md and the nova-redis README).

Clients checked: the containers' env (sentinel, redis, haproxy, the services, the helm test pods), the probes,
hooks and start scripts (run from the rendered files with a recording redis-cli), HAProxy's Sentinel check,
both charts' NOTES, the docs' commands, tools.cluster's inventory and plans, and the cluster tests. The last
test starts the real Debian redis-sentinel from the rendered start-sentinel.sh and sentinel.conf and shows
that the sentinel container's own client env authenticates (redis-cli exits 0 on NOAUTH: answers checked).
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHARTS, ROOT, helm_path, render, require_binaries
from tools import charts as chart_files
from tools import helm
from tools.cluster import inventory, plan
from tools.manifest import KubeObject

NOVA = CHARTS / "nova"
REDIS = CHARTS / "nova-redis"
R_PW, S_PW = "redis-pw-R", "sentinel-pw-S"  # stand-ins for the Secret's two keys
SENTINEL_PORT = 26411  # a non-default Sentinel port: a hard-coded 26379 anywhere shows up

# (chart, values files, --set) of every profile: the umbrella's profiles and scenarios, the Redis chart's
# ci/ profiles, each also with a non-default Sentinel port and (Redis chart) with an existingSecret.
UMBRELLA = [(NOVA, chart_files.profile_values(p), ()) for p in chart_files.profiles(NOVA)]
UMBRELLA += [(NOVA, chart_files.profile_values(p), (f"redis.sentinel.port={SENTINEL_PORT}",))
             for p in chart_files.profiles(NOVA)[:2]]
SUBCHART = [(REDIS, chart_files.profile_values(p), ()) for p in chart_files.profiles(REDIS)]
SUBCHART += [(REDIS, [], ("auth.existingSecret=own",)), (REDIS, [], (f"sentinel.port={SENTINEL_PORT}",)),
             (REDIS, [], ("aclUsers.app.keyPrefix=app:", "metrics.enabled=true"))]
CASES = UMBRELLA + SUBCHART
IDS = [f"{c.name}:{'+'.join(Path(v).name for v in vs) or 'defaults'}{':' + ','.join(s) if s else ''}"
       for c, vs, s in CASES]


NAMESPACE = "nova-services"


@functools.cache
def _release(chart: Path, values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[list[KubeObject], str]:
    """One ``helm install --dry-run=client`` per case: its hooks and manifest (the objects ``helm template``
    renders, hooks included) and its NOTES, from the same render, so both sides of a check see one set of
    generated values."""
    helm.dependency_build(chart, helm=helm_path(4))
    args = ["install", "nova", str(chart), "--dry-run=client", "--namespace", NAMESPACE]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    out = helm.run(args, helm=helm_path(4))
    parts = re.match(r"(?s).*?^HOOKS:\n(.*?)^MANIFEST:\n(.*?)^NOTES:\n(.*)", out, re.MULTILINE)
    assert parts, f"unexpected helm install --dry-run output:\n{out[:2000]}"
    hooks, manifest, notes = parts.groups()
    return helm.parse_manifests(f"{hooks}\n---\n{manifest}", f"helm install {chart}", NAMESPACE), notes


def _objects(chart: Path, values: list[Any], sets: tuple[str, ...]) -> list[KubeObject]:
    return _release(chart, tuple(map(str, values)), tuple(sets))[0]


def _redis_sts(objs: list[KubeObject]) -> KubeObject | None:
    return next((o for o in objs if o.kind == "StatefulSet" and o["metadata"]["labels"].get(
        "app.kubernetes.io/name") == "nova-redis"), None)


def _pod_spec(o: KubeObject) -> dict[str, Any]:
    return o["spec"] if o.kind == "Pod" else o["spec"]["template"]["spec"]


def _containers(o: KubeObject) -> list[dict[str, Any]]:
    spec = _pod_spec(o)
    return (spec.get("initContainers") or []) + spec["containers"]


def _container(o: KubeObject, name: str) -> dict[str, Any]:
    """The chart's own container by name (escape hatches may add init containers and sidecars around it)."""
    return next(c for c in _containers(o) if c["name"] == name)


def _ref(c: dict[str, Any], name: str) -> dict[str, Any] | None:
    e = next((e for e in c.get("env") or [] if e["name"] == name), None)
    return ((e or {}).get("valueFrom") or {}).get("secretKeyRef")


def _sentinel_port(objs: list[KubeObject]) -> int | None:
    sts = _redis_sts(objs)
    if sts is None:
        return None
    return next(p["containerPort"] for c in _containers(sts) for p in c.get("ports") or [] if p["name"] == "sentinel")


def _secret_keys(objs: list[KubeObject], secret: str) -> set[str]:
    return {k for o in objs if o.kind == "Secret" and o.name == secret for k in (o.get("data") or {})}


def _existing(objs: list[KubeObject], secret: str) -> bool:
    """True when the Secret is not rendered by the charts (an existingSecret the user provides)."""
    return not any(o.kind == "Secret" and o.name == secret for o in objs)


# ------------------------------------------------------------------------------------ containers' env

@pytest.mark.parametrize(("chart", "values", "sets"), CASES, ids=IDS)
def test_every_sentinel_client_container_takes_the_sentinel_password(chart: Path, values: list[Any],
                                                                      sets: tuple[str, ...]) -> None:
    objs = _objects(chart, values, sets)
    sts = _redis_sts(objs)
    checked = 0
    if sts is not None:
        by_name = {c["name"]: c for c in _containers(sts)}
        secret = _ref(by_name["redis"], "REDIS_PASSWORD")["name"]
        optional = _existing(objs, secret)
        # The sentinel container's own redis-cli talks to Sentinel; its scripts set the password per port.
        # Optional only for a Secret the release does not render (the fallback); a rendered one has the key.
        sentinel_auth = _ref(by_name["sentinel"], "REDISCLI_AUTH")
        assert (sentinel_auth["name"], sentinel_auth["key"]) == (secret, "sentinel-password")
        assert sentinel_auth.get("optional") is True if optional else "sentinel-password" in _secret_keys(objs, secret)
        # The redis container's redis-cli talks to Redis.
        assert _ref(by_name["redis"], "REDISCLI_AUTH") == {"name": secret, "key": "redis-password"}
        for name in ("sentinel", "redis"):
            assert _ref(by_name[name], "SENTINEL_PASSWORD")["key"] == "sentinel-password", name
        proxy = next(o for o in objs if o.kind == "Deployment" and o["metadata"]["labels"][
            "app.kubernetes.io/component"] == "master-proxy")
        assert _ref(_container(proxy, "haproxy"), "SENTINEL_PASSWORD")["key"] == "sentinel-password"
        checked += 4
    # Nobody else reads sentinel-password under another name, and every *SENTINEL_PASSWORD takes it.
    for o in objs:
        if o.kind not in ("Deployment", "StatefulSet", "Job", "Pod"):
            continue
        for c in _containers(o):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
                if e["name"].endswith("SENTINEL_PASSWORD"):
                    assert ref.get("key") == "sentinel-password", f"{o.ref} {c['name']} {e['name']}: {ref}"
                    assert ref.get("optional") is True or not _existing(objs, ref["name"]), f"{o.ref} {e['name']}"
                    checked += 1
                elif ref.get("key") == "sentinel-password":
                    # redis-cli in the sentinel container; the Sentinel exporter (redis_exporter's own variable)
                    assert (e["name"], c["name"]) in {("REDISCLI_AUTH", "sentinel"), ("REDIS_PASSWORD", "sentinel-metrics")}, \
                        f"{o.ref} {c['name']} {e['name']}"
    assert checked


@pytest.mark.parametrize(("values", "sets"), [(v, s) for c, v, s in UMBRELLA], ids=IDS[:len(UMBRELLA)])
def test_services_and_helm_test_pods_get_the_sentinel_password_not_the_redis_password(
        values: list[Any], sets: tuple[str, ...]) -> None:
    objs = _objects(NOVA, values, sets)
    secrets = {(o.namespace, o.name): {k: base64.b64decode(v).decode() for k, v in (o.get("data") or {}).items()}
               for o in objs if o.kind == "Secret"}
    creds = next((d for (_, n), d in secrets.items() if n.endswith("-redis-credentials")), None)
    clients = 0
    for o in objs:
        if o.kind not in ("Deployment", "Pod"):
            continue
        for c in _containers(o):
            env_from = [secrets.get((o.namespace, s["secretRef"]["name"]), {}) for s in c.get("envFrom") or []
                        if "secretRef" in s]
            if not any("REDIS_SENTINEL_ADDRS" in d for d in env_from):
                continue
            clients += 1
            ref = _ref(c, "REDIS_SENTINEL_PASSWORD")
            given = next((d["REDIS_SENTINEL_PASSWORD"] for d in env_from if "REDIS_SENTINEL_PASSWORD" in d), None)
            if given is not None:  # generated: the Sentinel value, distinct from the Redis one
                assert creds and given == creds["sentinel-password"] != creds["redis-password"], o.ref
            elif ref is not None:  # an existing Secret: its sentinel-password key, optional (the fallback)
                assert ref["key"] == "sentinel-password" and ref.get("optional") is True, o.ref
            else:  # external Redis: no Sentinel password at all, so nothing can be the wrong one
                assert not _redis_sts(objs), f"{o.ref} {c['name']}: no Sentinel password"
    assert clients >= 5


# ------------------------------------------------------------------------------------ scripts and probes

FAKE_CLI = r"""#!/bin/sh
# Records who asked which port with which password, and answers like a healthy 3-node Redis + Sentinel.
port=""; host=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        -p) port=$2; shift 2 ;;
        -h) host=$2; shift 2 ;;
        --raw|--no-auth-warning) shift ;;
        *) break ;;
    esac
done
printf '%s %s %s\n' "$port" "${REDISCLI_AUTH-<unset>}" "$*" >>"$FAKE_LOG"
case "$*" in
    PING) echo PONG ;;
    "INFO replication") printf 'role:master\nconnected_slaves:1\nmaster_repl_offset:7\nslave0:ip=x,port=1,state=online,offset=7,lag=0\n' ;;
    "SENTINEL master"*) printf 'name\nnova\nip\n%s\nport\n1\nconfig-epoch\n1\n' "$FAKE_MASTER" ;;
    "SENTINEL get-master-addr-by-name"*) printf '%s\n1\n' "$FAKE_MASTER" ;;
    *) echo OK ;;
esac
"""


def _container_env(sts: KubeObject, container: str, data: dict[str, str], tmp: Path) -> dict[str, str]:
    """The env the kubelet gives `container`, with the Secret `data` (a missing optional key is unset)."""
    c = next(c for c in _containers(sts) if c["name"] == container)
    env: dict[str, str] = {}
    for e in c["env"]:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "fieldRef" in e["valueFrom"]:
            env[e["name"]] = f"{sts.name}-0"
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            if ref["key"] in data:
                env[e["name"]] = data[ref["key"]]
            else:
                assert ref.get("optional"), f"{container} {e['name']}: key {ref['key']} missing and not optional"
    for key, sub in (("NOVA_REDIS_CONFIG_DIR", "config"), ("NOVA_REDIS_DATA_DIR", "data"), ("NOVA_REDIS_RUN_DIR", "run")):
        env[key] = str(tmp / sub)
    return env


def _write_config(objs: list[KubeObject], tmp: Path) -> Path:
    cm = next(o for o in objs if o.kind == "ConfigMap" and "start-sentinel.sh" in (o.get("data") or {}))
    d = tmp / "config"
    d.mkdir()
    for k, v in cm["data"].items():
        (d / k).write_text(v)
    return d


def _run(argv: list[str], env: dict[str, str], config: Path, fake_bin: Path) -> subprocess.CompletedProcess[str]:
    argv = [a.replace("/opt/nova-redis", str(config)) for a in argv]
    return subprocess.run(argv, env={**env, "PATH": f"{fake_bin}:/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("secret_keys", [("redis-password", "sentinel-password"), ("redis-password",)],
                         ids=["both-keys", "existingSecret-without-sentinel-password"])
def test_probes_hooks_and_start_scripts_use_the_sentinel_password_for_every_sentinel_call(
        tmp_path: Path, secret_keys: tuple[str, ...]) -> None:
    nodes = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    sets = [f"nodeAddresses={{{','.join(nodes)}}}", f"sentinel.port={SENTINEL_PORT}", "sentinel.discoveryTimeoutSeconds=1"]
    if len(secret_keys) == 1:
        sets.append("auth.existingSecret=own")
    objs = render(REDIS, [], sets, namespace="nova")
    sts = _redis_sts(objs)
    config = _write_config(objs, tmp_path)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool, body in (("redis-cli", FAKE_CLI), ("redis-server", "#!/bin/sh\nexit 0\n")):
        (fake_bin / tool).write_text(body)
        (fake_bin / tool).chmod(0o755)
    log = tmp_path / "calls.log"
    data = {k: {"redis-password": R_PW, "sentinel-password": S_PW}[k] for k in secret_keys}
    expected_sentinel_pw = S_PW if "sentinel-password" in data else R_PW  # the documented fallback
    runs = 0
    for container in ("redis", "sentinel"):
        env = {**_container_env(sts, container, data, tmp_path), "FAKE_LOG": str(log), "FAKE_MASTER": nodes[1]}
        c = next(c for c in _containers(sts) if c["name"] == container)
        commands = [c[p]["exec"]["command"] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
        commands += [c["lifecycle"]["preStop"]["exec"]["command"], c["command"]]
        for argv in commands:
            proc = _run(argv, env, config, fake_bin)
            assert proc.returncode == 0, f"{container}: {argv[-1]}: {proc.stdout}{proc.stderr}"
            runs += 1
    calls = [ln.split(" ", 2) for ln in log.read_text().splitlines()]
    to_sentinel = [auth for port, auth, _ in calls if port == str(SENTINEL_PORT)]
    to_redis = [auth for port, auth, _ in calls if port != str(SENTINEL_PORT)]
    assert runs == 10 and len(to_sentinel) >= 10 and len(to_redis) >= 5, calls
    assert set(to_sentinel) == {expected_sentinel_pw}, calls
    assert set(to_redis) == {R_PW}, calls
    # The working sentinel.conf start-sentinel.sh wrote: requirepass/sentinel-pass = Sentinel's password.
    conf = (tmp_path / "data" / "sentinel" / "sentinel.conf").read_text()
    assert f'requirepass "{expected_sentinel_pw}"' in conf and f'sentinel sentinel-pass "{expected_sentinel_pw}"' in conf
    assert f'sentinel auth-pass nova "{R_PW}"' in conf


@pytest.mark.parametrize("secret_keys", [("redis-password", "sentinel-password"), ("redis-password",)],
                         ids=["both-keys", "existingSecret-without-sentinel-password"])
def test_haproxy_checks_sentinel_with_the_sentinel_password(tmp_path: Path, secret_keys: tuple[str, ...]) -> None:
    sets = [f"sentinel.port={SENTINEL_PORT}"] + (["auth.existingSecret=own"] if len(secret_keys) == 1 else [])
    objs = render(REDIS, [], sets, namespace="nova")
    cfg = next(o for o in objs if o.kind == "ConfigMap" and "haproxy.cfg" in o["data"])
    # The node backends check Redis (AUTH with REDIS_PASSWORD); the node<i>_votes backends check the Sentinels,
    # whose servers are on the Sentinel port (AUTH with SENTINEL_PASSWORD).
    text = cfg["data"]["haproxy.cfg"]
    backends = dict(re.findall(r"\nbackend (\S+)\n(.*?)(?=\nbackend |\Z)", text, flags=re.DOTALL))
    nodes = {k: v for k, v in backends.items() if re.fullmatch(r"node\d+", k)}
    votes = {k: v for k, v in backends.items() if k.endswith("_votes")}
    assert len(nodes) == len(votes) == 3
    for body in nodes.values():
        assert re.findall(r"\$\{(\w+_PASSWORD)\}", body) == ["REDIS_PASSWORD"], body
    for body in votes.values():
        assert re.findall(r"\$\{(\w+_PASSWORD)\}", body) == ["SENTINEL_PASSWORD"], body
        ports = re.findall(r"\n\s*server sentinel\d+ \S+:(\d+) ", body)
        assert ports == [str(SENTINEL_PORT)] * 3, body
    proxy = next(o for o in objs if o.kind == "Deployment")
    c = _container(proxy, "haproxy")
    data = {k: {"redis-password": R_PW, "sentinel-password": S_PW}[k] for k in secret_keys}
    env = {e["name"]: data[e["valueFrom"]["secretKeyRef"]["key"]] for e in c["env"]
           if "valueFrom" in e and e["valueFrom"]["secretKeyRef"]["key"] in data}
    script = tmp_path / "start-haproxy.sh"
    script.write_text(cfg["data"]["start-haproxy.sh"])
    (tmp_path / "haproxy").write_text("#!/bin/sh\necho \"$SENTINEL_PASSWORD $SENTINEL_PASSWORD_LEN\"\n")
    (tmp_path / "haproxy").chmod(0o755)
    out = subprocess.run(["/bin/sh", str(script)], env={**env, "HAPROXY_CONFIG": "x", "PATH": f"{tmp_path}:/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    expected = S_PW if "sentinel-password" in data else R_PW
    assert out == [expected, str(len(expected))]


# ------------------------------------------------------------------------------------ NOTES and docs

def _notes(chart: Path, values: list[Any], sets: tuple[str, ...]) -> str:
    return _release(chart, tuple(map(str, values)), tuple(sets))[1]


def _sentinel_lines(text: str, port: int) -> list[str]:
    return [ln for ln in text.splitlines() if f"-p {port}" in ln or "Sentinel" in ln or "sentinel-password" in ln]


@pytest.mark.parametrize(("chart", "values", "sets"), CASES, ids=IDS)
def test_notes_point_sentinel_clients_at_the_sentinel_password(chart: Path, values: list[Any],
                                                               sets: tuple[str, ...]) -> None:
    objs = _objects(chart, values, sets)
    port = _sentinel_port(objs)
    notes = _notes(chart, values, sets)
    if port is None:
        assert "sentinel-password" not in notes
        return
    lines = _sentinel_lines(notes, port)
    assert any("sentinel-password" in ln for ln in lines), notes
    for ln in lines:
        # A password named for Sentinel is sentinel-password (redis-password only as the documented fallback).
        if "redis-password" in ln:
            assert "without" in ln and "sentinel-password" in ln, ln
        if f"redis-cli -p {port}" in ln:
            assert "-c sentinel" in ln, f"a Sentinel command outside the sentinel container: {ln}"
    generated = "generated once" in notes
    assert generated == (not _existing(objs, _ref(_container(_redis_sts(objs), "redis"), "REDIS_PASSWORD")["name"])), notes


def test_docs_run_sentinel_commands_in_the_sentinel_container_and_redis_commands_in_the_redis_one() -> None:
    docs = [ROOT / "README.md", REDIS / "README.md", NOVA / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for doc in docs:
        for ln in doc.read_text().splitlines():
            if "redis-cli" not in ln or "kubectl" not in ln or " exec " not in ln:
                continue
            to_sentinel = bool(re.search(r"-p 26379\b", ln))
            assert ("-c sentinel" in ln) == to_sentinel, f"{doc.relative_to(ROOT)}: {ln.strip()}"
            assert "redis-password" not in ln or not to_sentinel, f"{doc.relative_to(ROOT)}: {ln.strip()}"
            checked += 1
    assert checked >= 4


# ------------------------------------------------------------------------------------ tools.cluster, cluster tests

@pytest.mark.parametrize(("values", "sets"), [(v, s) for c, v, s in UMBRELLA], ids=IDS[:len(UMBRELLA)])
def test_tools_cluster_asks_sentinel_with_the_sentinel_password(values: list[Any], sets: tuple[str, ...]) -> None:
    objs = _objects(NOVA, values, sets)
    inv = inventory.build(objs, "nova", NAMESPACE)
    port = _sentinel_port(objs)
    if port is None:
        assert inv.sentinel_password() is None
        return
    ref = inv.sentinel_password()
    assert ref is not None and ref.key == "sentinel-password"
    # An optional reference (an existing Secret) reads redis-password when the key is missing, like the scripts.
    sentinel_c = next(c for c in _containers(_redis_sts(objs)) if c["name"] == "sentinel")
    assert ref.fallback == ("redis-password" if _ref(sentinel_c, "SENTINEL_PASSWORD").get("optional") else None)
    assert "redis-password" not in ref.go_template().split("else")[0]
    for verb in ("deploy", "status"):
        s = plan.Settings()
        steps = plan.plan_deploy(s, inv) if verb == "deploy" else plan.plan_status(s, inv)
        reads = {st.capture: st for st in steps if st.capture}
        asks = [st for st in steps if any(f"-p {port} " in a for a in st.argv)]
        assert asks, f"{verb}: no step asks Sentinel on port {port}"
        for st in asks:
            assert st.stdin_from == "sentinel_password", st.title
            assert reads["sentinel_password"].argv[-1] == ref.go_template()
        for st in steps:
            if st.stdin_from == "redis_password":
                assert not any(f"-p {port} " in a for a in st.argv), st.title


def test_the_cluster_tests_ask_sentinel_with_the_sentinel_password() -> None:
    """Every redis-cli call of tests/cluster with a SENTINEL command passes the password tools.cluster's
    inventory locates for Sentinel (nova.inv.sentinel_password()), never the Redis one."""
    checked = 0
    for path in sorted((ROOT / "tests" / "cluster").glob("test_*.py")):
        text = path.read_text()
        for call in re.finditer(r"\.redis\((?:[^()]|\([^()]*\))*\)", text, re.DOTALL):
            if "SENTINEL" in call.group(0):
                assert re.search(r",\s*sentinel_pw\)$", call.group(0)), f"{path.name}: {call.group(0)}"
                assert re.search(r"sentinel_pw = .*_value\(nova, sentinel_ref\)", text) or \
                    "sentinel_pw = " in text and "sentinel_password()" in text, path.name
                checked += 1
    assert checked >= 1


# ------------------------------------------------------------------------------------ the real Sentinel

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sentinel_daemon(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str], int]]:
    """The real redis-sentinel, started by the rendered start-sentinel.sh from the rendered sentinel.conf, on a
    free port of 127.0.0.1; yields (sentinel container env, redis container env, port). Killed by PID."""
    require_binaries("redis-server", "redis-cli")
    port, redis_port = _free_port(), _free_port()
    sets = ["nodeAddresses={127.0.0.1,127.0.0.2,127.0.0.3}", f"sentinel.port={port}", f"redis.port={redis_port}",
            "sentinel.discoveryTimeoutSeconds=1"]
    objs = render(REDIS, [], sets, namespace="nova")
    sts = _redis_sts(objs)
    config = _write_config(objs, tmp_path)
    data = {"redis-password": R_PW, "sentinel-password": S_PW}
    envs = {c: {**_container_env(sts, c, data, tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
            for c in ("sentinel", "redis")}
    argv = [a.replace("/opt/nova-redis", str(config)) for a in next(
        c for c in _containers(sts) if c["name"] == "sentinel")["command"]]
    out = (tmp_path / "sentinel.log").open("w")
    proc = subprocess.Popen(argv, env=envs["sentinel"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "PING"], capture_output=True,
                                  text=True, env={"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": S_PW}, check=False)
            if ping.stdout.strip() == "PONG":
                break
            assert proc.poll() is None, (tmp_path / "sentinel.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError(f"Sentinel did not answer on {port}: {(tmp_path / 'sentinel.log').read_text()}")
        yield envs["sentinel"], envs["redis"], port
    finally:
        proc.kill()
        proc.wait(timeout=10)
        out.close()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_the_sentinel_containers_own_client_env_authenticates_to_the_real_sentinel(
        sentinel_daemon: tuple[dict[str, str], dict[str, str], int]) -> None:
    sentinel_env, redis_env, port = sentinel_daemon
    ask = ["redis-cli", "--raw", "-h", "127.0.0.1", "-p", str(port), "SENTINEL", "get-master-addr-by-name", "nova"]
    # As an operator runs it: kubectl exec -c sentinel -- redis-cli -p <port> SENTINEL get-master-addr-by-name nova
    ok = subprocess.run(ask, env=sentinel_env, capture_output=True, text=True, timeout=10, check=False)
    assert ok.returncode == 0 and ok.stdout.split() == ["127.0.0.1", redis_env["REDIS_PORT"]], ok
    # The redis container's env (redis-password) is refused, and redis-cli still exits 0: check answers.
    refused = subprocess.run(ask, env=redis_env, capture_output=True, text=True, timeout=10, check=False)
    assert refused.returncode == 0 and "NOAUTH" in refused.stdout + refused.stderr, refused
    # tools.cluster's checked probes: they fail on a wrong password or a wrong role, not only on exit codes.
    script = plan.sentinel_master_script("127.0.0.1", port, "nova", with_password=True)
    base = {"PATH": "/usr/bin:/bin"}
    good = subprocess.run(["sh", "-c", script], input=S_PW, env=base, capture_output=True, text=True, check=False)
    assert good.returncode == 0 and good.stdout.strip() == f"master 127.0.0.1 port {redis_env['REDIS_PORT']}", good
    bad = subprocess.run(["sh", "-c", script], input=R_PW, env=base, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "names no master" in bad.stderr, bad
    role = subprocess.run(["sh", "-c", plan.redis_role_script("127.0.0.1", port, with_password=True)], input=S_PW,
                          env=base, capture_output=True, text=True, check=False)
    assert role.returncode == 1 and "answered [sentinel], expected master" in role.stderr, role


# ------------------------------------------------------------------------------------ NOTES' other truths

def test_notes_with_existing_secrets_name_the_keys_to_provide_and_never_say_generated() -> None:
    notes = _notes(NOVA, [NOVA / "ci" / "render" / "existing-secrets-values.yaml"], ())
    assert "generated" not in notes.split("Check the installation")[0]
    assert "from your Secret nova-services/nova-redis-own" in notes
    assert "keys redis-password, sentinel-password" in notes
    assert "from your Secret nova-services/nova-postgres-own" in notes and "user_service-password" in notes
    assert "jsonpath='{.data." not in notes, "no command reading a key the chart does not write"


def test_production_notes_list_the_per_service_acl_passwords_and_the_placeholder_images() -> None:
    notes = _notes(NOVA, chart_files.profile_values("production"), ())
    users = {"user_service", "auth_service", "search_service", "streaming_api", "messaging_service"}
    for user in users:
        assert f"jsonpath='{{.data.acl-{user}-password}}'" in notes, user
    assert "user-service       user user_service, keys user:*" in notes
    assert ("WARNING: the images of auth-service, messaging-service, search-service, streaming-api, user-service "
            "are placeholders") in notes
    local = _notes(NOVA, [ROOT / "values" / "local.yaml"], ())
    assert "placeholders" not in local and "acl-" not in local
