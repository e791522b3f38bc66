"""Benchmark: `python -m tools.lint --manifests FILE` against checkov on the same 10,000-object manifest.

    python bench/lint.py [--objects 10000] [--runs 3] [--checkov-runs N]

Generates bench/.work/lint-manifest.yaml (varied kinds, some violations), installs checkov into its
own venv under bench/.work/checkov-venv (pip, from PyPI) when missing, then alternates runs of both
tools on the file and reports medians. nova-lint validates against its default Kubernetes
versions (1.29 and the newest kubernetes-validate supports, i.e. two strict schema passes) and runs
every policy rule. The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
CHECKOV_VENV = WORK / "checkov-venv"


def _labels(i: int, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"app{i}", "app.kubernetes.io/instance": "bench",
            "app.kubernetes.io/component": component}


def _container(i: int, bad: bool) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "main", "image": "redis" if bad else f"registry.local/app{i}:1.{i % 7}.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "SLOT", "value": str(i)}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }
    if bad:
        c["securityContext"] = {"privileged": True}
        del c["livenessProbe"]
        c["env"].append({"name": "API_TOKEN", "value": f"tok-{i}-abcdef"})
    return c


def _pod(i: int, bad: bool) -> dict[str, Any]:
    return {"automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(i, bad)], "hostNetwork": bad}


def generate(count: int) -> list[dict[str, Any]]:
    """``count`` objects in groups of 10 (workloads with their Service, PDB, ConfigMap ...); 1 group in 7 is bad."""
    objects: list[dict[str, Any]] = []
    i = 0
    while len(objects) < count:
        bad = i % 7 == 3
        ns = f"team{i % 20}"
        labels = _labels(i, "web")
        meta = {"name": f"app{i}", "namespace": ns, "labels": labels}
        template = {"metadata": {"labels": labels}, "spec": _pod(i, bad)}
        kind = ("Deployment", "StatefulSet", "DaemonSet")[i % 3]
        spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
        if kind != "DaemonSet":
            spec["replicas"] = 3
        if kind == "StatefulSet":
            spec["serviceName"] = f"app{i}"
        group = [
            {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec},
            {"apiVersion": "v1", "kind": "Service", "metadata": meta,
             "spec": {"selector": labels if not bad else {"app": "typo"}, "ports": [{"port": 80, "targetPort": "http"}]}},
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
             "data": {"LOG_LEVEL": "info", "app.conf": f"listen 8080\nworkers {i % 8 + 1}\n"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
             "stringData": {"password": f"generated-{i}"}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
             "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"],
                      "ingress": [{"ports": [{"port": 8080}]}]}},
            {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": f"app{i}"},
                      "minReplicas": 2 if not bad else 5, "maxReplicas": 6 if not bad else 3}},
            {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
             "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
                 "metadata": {"labels": labels}, "spec": {**_pod(i, bad), "restartPolicy": "OnFailure"}}}}}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        ]
        objects.extend(group)
        i += 1
    return objects[:count]


def write_manifest(path: Path, objects: list[dict[str, Any]]) -> None:
    with path.open("w") as fh:
        for n, obj in enumerate(objects):
            fh.write(f"---\n# Source: bench/templates/{obj['kind'].lower()}.yaml\n")
            yaml.dump(obj, fh, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def ensure_checkov() -> Path:
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        print("installing checkov into", CHECKOV_VENV, flush=True)
        venv.EnvBuilder(with_pip=True).create(CHECKOV_VENV)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return binary


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of nova-lint")
    parser.add_argument("--checkov-runs", type=int, default=None, help="runs of checkov (default: --runs)")
    args = parser.parse_args()
    if args.runs < 1 or (args.checkov_runs is not None and args.checkov_runs < 1):
        raise SystemExit("--runs and --checkov-runs must be at least 1")
    WORK.mkdir(parents=True, exist_ok=True)
    manifest = WORK / "lint-manifest.yaml"
    objects = generate(args.objects)
    write_manifest(manifest, objects)
    checkov = ensure_checkov()
    nova_cmd = [sys.executable, "-m", "tools.lint", "--manifests", str(manifest), "--no-config", "--format", "json",
                "-o", str(WORK / "nova-lint.json")]
    checkov_cmd = [str(checkov), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact",
                   "--skip-download", "-o", "json"]
    checkov_runs = args.runs if args.checkov_runs is None else args.checkov_runs
    nova_times: list[float] = []
    checkov_times: list[float] = []
    for n in range(max(args.runs, checkov_runs)):
        if n < args.runs:
            t, _ = timed(nova_cmd)
            nova_times.append(t)
            print(f"run {n + 1}: nova-lint {t:.2f}s", flush=True)
        if n < checkov_runs:
            t, _ = timed(checkov_cmd)
            checkov_times.append(t)
            print(f"run {n + 1}: checkov   {t:.2f}s", flush=True)
    findings = json.loads((WORK / "nova-lint.json").read_text())["findings"]
    nova_s, checkov_s = statistics.median(nova_times), statistics.median(checkov_times)
    print(json.dumps({
        "objects": len(objects), "nova_s": round(nova_s, 3), "checkov_s": round(checkov_s, 3),
        "speedup": round(checkov_s / nova_s, 1), "nova_runs": [round(t, 3) for t in nova_times],
        "checkov_runs": [round(t, 3) for t in checkov_times], "nova_findings": len(findings),
        "nova_kube_versions": 2, "goal_speedup": 20,
    }))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _cli import run

    run(main, "lint")
