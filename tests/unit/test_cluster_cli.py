"""python -m tools.cluster end to end with stand-in docker/kind/kubectl/helm executables on PATH:
missing tools and unreachable clusters give one line and exit 2, never a traceback; the runner runs a
plan's commands in order, passes captured secrets on stdin, and stops at the first failed step."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tools import cluster, helm
from tools.cluster import plan, runner
from tools.cluster.plan import Step

LOG = "calls.log"


def fake(bin_dir: Path, name: str, body: str = "") -> Path:
    """An executable that logs its argv (one line per call) then runs ``body`` (sh)."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{bin_dir / LOG}"\n{body}\nexit 0\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir / LOG
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cluster.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err


# --- prerequisites -----------------------------------------------------------------------------------

def test_up_without_docker_says_to_install_docker(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "up")
    assert_one_line_error(code, err, "cluster up: docker not found (docker): install Docker")


def test_up_with_docker_stopped_says_to_start_it(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake(bin_dir, "docker", 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1')
    fake(bin_dir, "kind")
    fake(bin_dir, "kubectl")
    code, _, err = run(capsys, "up")
    assert_one_line_error(code, err, "docker is installed but its daemon does not answer (Cannot connect to the "
                                     "Docker daemon at unix:///var/run/docker.sock): start Docker")


def test_down_without_kind_says_to_install_kind(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake(bin_dir, "docker")
    code, _, err = run(capsys, "down")
    assert_one_line_error(code, err, "cluster down: kind not found (kind): install kind")


@pytest.mark.parametrize("verb", ["deploy", "status", "logs", "test", "cleanup"])
def test_cluster_verbs_without_kubectl_say_to_install_it(
    verb: str, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, verb)
    assert_one_line_error(code, err, f"cluster {verb}: kubectl not found (kubectl): install kubectl")


def test_deploy_without_helm_says_to_run_make_setup(
    bin_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(bin_dir, "kubectl")

    def no_helm(major: int = 4) -> str:
        raise helm.HelmError("helm 4 not found: set HELM, or run `make setup` to install it as .venv/bin/helm")

    monkeypatch.setattr(helm, "find_helm", no_helm)
    code, _, err = run(capsys, "deploy")
    assert_one_line_error(code, err, "cluster deploy: helm 4 not found: set HELM, or run `make setup`")


@pytest.mark.parametrize("verb", ["deploy", "status", "logs", "test", "cleanup"])
def test_no_reachable_cluster_says_to_run_make_up(verb: str, bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake(bin_dir, "kubectl", 'echo "The connection to the server 127.0.0.1:6443 was refused" >&2; exit 1')
    code, _, err = run(capsys, verb)
    assert_one_line_error(code, err, f"cluster {verb}: no reachable Kubernetes cluster (The connection to the server "
                                     "127.0.0.1:6443 was refused): run `make up`")
    assert calls(bin_dir) == ["kubectl get --raw /readyz --request-timeout=5s"]


def test_a_missing_values_file_is_named(bin_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fake(bin_dir, "kubectl")
    code, _, err = run(capsys, "deploy", "-f", str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err, f"values file {tmp_path / 'nope.yaml'} does not exist")


def test_a_component_on_a_verb_other_than_logs_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "redis")
    assert_one_line_error(code, err, "'status' takes no component (only logs does)")


def test_an_unknown_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "explode")[0] == 2


# --- running plans ---------------------------------------------------------------------------------------

def test_up_runs_kind_then_waits_for_nodes(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake(bin_dir, "docker")
    fake(bin_dir, "kind")
    fake(bin_dir, "kubectl")
    code, out, err = run(capsys, "up")
    assert code == 0, err
    cfg = str(helm.REPO_ROOT / "kind" / "cluster.yaml")
    assert calls(bin_dir) == [
        "docker info --format {{.ServerVersion}}",
        "kind version",
        "kind get clusters",
        f"kind create cluster --name nova --config {cfg} --wait 180s",
        "kubectl --context kind-nova wait --for=condition=Ready nodes --all --timeout=180s",
        "kubectl --context kind-nova get nodes -L topology.kubernetes.io/zone",
    ]
    assert "==> create Kind cluster 'nova' (1 control plane, 3 workers)" in out


def test_a_failed_step_stops_the_plan_with_one_line(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake(bin_dir, "docker")
    fake(bin_dir, "kind", 'case "$1" in create) echo "ERROR: failed to create cluster: node(s) not ready" >&2; exit 1;; esac')
    fake(bin_dir, "kubectl")
    code, _, err = run(capsys, "up")
    assert code == 1
    assert err.strip() == ("cluster up: step failed: create Kind cluster 'nova' (1 control plane, 3 workers) "
                           "(exit 1): ERROR: failed to create cluster: node(s) not ready")
    assert not any(c.startswith("kubectl") for c in calls(bin_dir))


def test_dry_run_prints_the_plan_and_runs_nothing(bin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "down", "--dry-run", "--cluster-name", "ci")
    assert code == 0 and out.strip() == "kind delete cluster --name ci"
    assert calls(bin_dir) == []


def test_captured_secret_reaches_the_next_command_on_stdin_only(tmp_path: Path) -> None:
    import io
    sink = tmp_path / "stdin.txt"
    steps = [
        Step("read", ("sh", "-c", "printf s3cr3t"), capture="pw"),
        Step("use", ("sh", "-c", f'cat > "{sink}"'), stdin_from="pw"),
    ]
    out = io.StringIO()
    assert runner.execute(steps, "t", out=out, err=io.StringIO()) == 0
    assert sink.read_text() == "s3cr3t"
    assert "s3cr3t" not in out.getvalue()


def test_optional_step_failure_is_reported_and_the_plan_goes_on(tmp_path: Path) -> None:
    import io
    steps = [Step("optional", ("sh", "-c", "echo nope >&2; exit 3"), optional=True),
             Step("needs missing capture", ("sh", "-c", "exit 9"), stdin_from="absent"),
             Step("last", ("sh", "-c", "echo done"))]
    out = io.StringIO()
    assert runner.execute(steps, "t", out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    assert "(not available, exit 3: nope)" in text and "(skipped: absent not available)" in text
    assert text.rstrip().endswith("done")


UMBRELLA = {
    "Chart.yaml": "apiVersion: v2\nname: nova\nversion: 0.1.0\n",
    "templates/redis.yaml": """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-redis
  labels: {helm.sh/chart: nova-redis-0.1.0}
spec:
  replicas: 3
  selector: {matchLabels: {app.kubernetes.io/name: nova-redis}}
  template:
    metadata: {labels: {app.kubernetes.io/name: nova-redis}}
    spec:
      containers:
        - name: redis
          env:
            - name: REDIS_PASSWORD
              valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-redis-credentials, key: redis-password}}
        - name: sentinel
          ports: [{name: sentinel, containerPort: 26379}]
""",
    "templates/svc.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-user-service
  namespace: {{ .Values.servicesNamespace }}
  labels: {helm.sh/chart: nova-0.1.0}
spec:
  replicas: 3
  selector: {matchLabels: {app.kubernetes.io/component: user-service}}
  template:
    metadata: {labels: {app.kubernetes.io/component: user-service}}
    spec: {containers: [{name: app}]}
""",
    "values.yaml": "servicesNamespace: apps\n",
}


def test_deploy_renders_the_chart_then_runs_helm_and_the_waits_in_order(
    bin_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = tmp_path / "nova"
    for rel, text in UMBRELLA.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    values = tmp_path / "local.yaml"
    values.write_text("servicesNamespace: apps\n")
    real_helm = helm.find_helm(4)
    # helm renders for real; install/upgrade are only recorded
    wrapper = fake(bin_dir, "helm", f'case "$1" in template|dependency|version) exec "{real_helm}" "$@";; esac')
    monkeypatch.setenv("HELM", str(wrapper))
    fake(bin_dir, "kubectl", 'case "$*" in *base64decode*) printf pw;; esac')
    code, out, err = run(capsys, "deploy", "--chart", str(chart), "-f", str(values))
    assert code == 0, err
    recorded = [c for c in calls(bin_dir) if not c.startswith("helm template")]
    assert recorded == [
        "kubectl get --raw /readyz --request-timeout=5s",
        "kubectl apply -f -",
        f"helm upgrade --install nova {chart} --namespace nova --create-namespace -f {values} --timeout 900s",
        "kubectl rollout status statefulset/nova-redis -n nova --timeout=900s",
        'kubectl get secret nova-redis-credentials -n nova -o go-template={{index .data "redis-password" | base64decode}}',
        # no helm test pod in this chart, so no admitted client pod: the pod's own Sentinel over loopback,
        # with the password on stdin and the answer checked
        "kubectl exec -i -n nova nova-redis-0 -c sentinel -- sh -c "
        + plan.sentinel_master_script("127.0.0.1", 26379, "nova", with_password=True),
        "kubectl rollout status deployment/nova-user-service -n apps --timeout=900s",
    ]
    assert "[2/3 PostgreSQL (etcd + Patroni)] nothing to wait for" in out
    assert "[3/3 services] ready" in out
    assert "==> helm upgrade --install nova" in out


def test_logs_takes_its_component_before_or_after_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "logs", "--dry-run", "--chart", str(helm.REPO_ROOT / "charts" / "nova"),
                         "--tail", "5", "user-service")
    assert code == 0, err
    assert out.startswith("kubectl logs -n nova -l ") and "--tail=5" in out and "user-service" in out
    code, _, err = run(capsys, "logs", "--dry-run", "nope")
    assert_one_line_error(code, err, "unknown component 'nope': choose one of redis, redis-master")
    assert err.count("redis,") == 1
