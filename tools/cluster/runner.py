"""Prerequisite checks (tools installed, Docker running, a cluster answering) and the plan runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from tools.cluster.plan import Settings, Step

# The oldest kind CI installs (.github/workflows/install.yaml); docs/deployment-guide.md states the same.
KIND_MIN_VERSION = "v0.27.0"
INSTALL_HINTS = {
    "docker": "install Docker (https://docs.docker.com/engine/install/) and start it",
    "kind": f"install kind {KIND_MIN_VERSION} or newer (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/)",
    "helm": "run `make setup` (installs helm 4 as .venv/bin/helm) or set HELM",
}


class PrerequisiteError(Exception):
    """A tool is missing or nothing answers; the message says what to install or start."""


Which = Callable[[str], "str | None"]


def require(names: Sequence[tuple[str, str]], which: Which = shutil.which) -> None:
    """``names``: (role, binary) pairs, e.g. ("kubectl", "/usr/bin/kubectl"). Raises for the first missing one."""
    for role, binary in names:
        if not (which(binary) or (os.path.isabs(binary) and os.access(binary, os.X_OK))):
            raise PrerequisiteError(f"{role} not found ({binary}): {INSTALL_HINTS.get(role, 'install it')}")


def _probe(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:.0f}s"
    except OSError as exc:
        return 127, str(exc)
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    return proc.returncode, (lines[-1] if lines else "")


def docker_running(docker: str = "docker") -> None:
    code, why = _probe([docker, "info", "--format", "{{.ServerVersion}}"], 20)
    if code != 0:
        raise PrerequisiteError(f"docker is installed but its daemon does not answer ({why[:160]}): start Docker "
                                "(e.g. `sudo systemctl start docker`)")


def cluster_reachable(s: Settings) -> None:
    code, why = _probe(s.kubectl_argv("get", "--raw", "/readyz", "--request-timeout=5s"), 15)
    if code != 0:
        raise PrerequisiteError(f"no reachable Kubernetes cluster ({why[:160] or 'kubectl failed'}): run `make up` "
                                "to create the Kind cluster, or point KUBECONFIG/--context at a running cluster")


def kind_clusters(kind: str = "kind") -> list[str]:
    code, _ = _probe([kind, "version"], 10)
    if code != 0:
        return []
    proc = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, check=False)
    return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]


def execute(steps: Sequence[Step], verb: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a plan in order; print a progress line per step. 0 ok, 1 when a required step failed."""
    out = out or sys.stdout
    err = err or sys.stderr
    captured: dict[str, str] = {}
    for step in steps:
        if step.is_note:
            print(step.title, file=out, flush=True)
            continue
        print(f"==> {step.title}", file=out, flush=True)
        stdin = step.stdin
        if step.stdin_from is not None:
            if step.stdin_from not in captured:
                print(f"    (skipped: {step.stdin_from.replace('_', ' ')} not available)", file=out, flush=True)
                continue
            stdin = captured[step.stdin_from]
        env = {**os.environ, **step.env} if step.env else None
        try:
            if step.capture:
                proc = subprocess.run(list(step.argv), input=stdin, capture_output=True, text=True, env=env, check=False)
            else:
                direct = _has_fd(out)
                proc = subprocess.run(list(step.argv), input=stdin, stdout=out if direct else subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env, check=False)
                if not direct and proc.stdout:
                    out.write(proc.stdout)
        except OSError as exc:
            print(f"{verb}: cannot run {step.argv[0]}: {exc.strerror or exc}", file=err, flush=True)
            return 1
        except KeyboardInterrupt:
            print(f"{verb}: interrupted during: {step.title}", file=err, flush=True)
            return 130
        stderr_lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
        if proc.returncode == 0:
            if step.capture:
                captured[step.capture] = proc.stdout
            elif stderr_lines:
                print("\n".join(stderr_lines), file=out, flush=True)
            continue
        why = f": {stderr_lines[-1][:300]}" if stderr_lines else ""
        if step.optional:
            print(f"    (not available, exit {proc.returncode}{why})", file=out, flush=True)
            continue
        print(f"{verb}: step failed: {step.title} (exit {proc.returncode}){why}", file=err, flush=True)
        return 1
    return 0


def _has_fd(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
