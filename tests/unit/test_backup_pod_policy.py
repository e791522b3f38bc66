"""Every backup and restore pod passes the project's policy and checkov's checks that the charts' other workloads pass
(issue 12; docs/disaster-recovery.md "Policy and checkov").

The pods: the PostgreSQL backup CronJobs and the pgBackRest sidecar of the PostgreSQL StatefulSet (nova-postgres), the
Redis backup CronJob and the restore init containers of the Redis StatefulSet (nova-redis), in the production umbrella
render, the charts' backup-*/restore-* render profiles and the two repository types they leave out (an S3 restore with
an incremental schedule; a Redis restore from S3). A PostgreSQL restore runs in the postgres container itself (Patroni's
custom bootstrap), which the charts' own tests and tools.lint cover like every other workload.

Each property is named by the checkov check it satisfies. Left out, on purpose, are the checks every workload of the
project fails (image digest CKV_K8S_43, pull policy Always CKV_K8S_15, secrets as env CKV_K8S_35, uid above 10000
CKV_K8S_40, the default namespace CKV_K8S_21 of standalone renders, probes on run-to-completion pods): the docs give the
reason for each. The project's policy itself (tools.lint) never flags a token mount on a pod whose ServiceAccount is
RBAC-bound, and the backup Jobs share the PostgreSQL pods' bound account: only this test holds CKV_K8S_38 for them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHARTS, ROOT, render
from tools import charts as chart_files
from tools.lint.config import load_config
from tools.lint.engine import lint
from tools.lint.model import Container, Workload, workload_of
from tools.manifest import KubeObject

PG = CHARTS / "nova-postgres"
REDIS = CHARTS / "nova-redis"
PG_S3 = PG / "ci" / "render" / "backup-s3-values.yaml"
PG_PITR = PG / "ci" / "render" / "restore-pitr-pvc-values.yaml"
REDIS_BACKUP = REDIS / "ci" / "render" / "backup-values.yaml"
REDIS_S3_RESTORE = ("backup.enabled=true", "backup.repository.type=s3",
                    "backup.repository.s3.endpoint=https://s3.example.com", "backup.repository.s3.bucket=nova-backups",
                    "backup.repository.s3.existingSecret=redis-backup-s3", "restore.fromSnapshot=latest")
PG_S3_RESTORE = ("restore.fromBackup=true", "restore.targetName=before-migration", "backup.schedules.incr=0 * * * *")

# name -> (chart, values files, --set values, render namespace)
RENDERS: dict[str, tuple[Path, tuple[Path, ...], tuple[str, ...], str]] = {
    "umbrella-production": (CHARTS / "nova", tuple(chart_files.profile_values("production")), (), "nova"),
    "postgres-backup-s3": (PG, (PG_S3,), (), "nova-database"),
    "postgres-restore-pitr-pvc": (PG, (PG_PITR,), (), "nova-database"),
    "postgres-restore-s3-incr": (PG, (PG_S3,), PG_S3_RESTORE, "nova-database"),
    "redis-backup-restore-pv": (REDIS, (REDIS_BACKUP,), (), "nova-redis"),
    "redis-backup-restore-s3": (REDIS, (), REDIS_S3_RESTORE, "nova-redis"),
}

# The backup and restore containers each render must have (kind/name: container): a pod that vanishes or appears
# unnoticed would make the assertions below vacuous or incomplete.
PG_BACKUP = ["CronJob/nova-postgres-backup-diff: backup", "CronJob/nova-postgres-backup-full: backup",
             "StatefulSet/nova-postgres: pgbackrest"]
EXPECTED: dict[str, list[str]] = {
    "umbrella-production": ["CronJob/postgres-backup-diff: backup", "CronJob/postgres-backup-full: backup",
                            "CronJob/redis-backup: snapshot", "CronJob/redis-backup: store",
                            "StatefulSet/postgres: pgbackrest"],
    "postgres-backup-s3": PG_BACKUP,
    "postgres-restore-pitr-pvc": PG_BACKUP,
    "postgres-restore-s3-incr": sorted([*PG_BACKUP, "CronJob/nova-postgres-backup-incr: backup"]),
    "redis-backup-restore-pv": ["CronJob/nova-redis-backup: snapshot", "CronJob/nova-redis-backup: store",
                                "StatefulSet/nova-redis: restore"],
    "redis-backup-restore-s3": ["CronJob/nova-redis-backup: snapshot", "CronJob/nova-redis-backup: store",
                                "StatefulSet/nova-redis: restore", "StatefulSet/nova-redis: restore-fetch"],
}
# Containers of shared pods that exist only for backups or restores.
BACKUP_CONTAINERS = frozenset({"pgbackrest", "restore", "restore-fetch"})


def objects(name: str) -> list[KubeObject]:
    chart, values, set_values, namespace = RENDERS[name]
    return render(chart, values, set_values, namespace=namespace)


def backup_containers(objs: list[KubeObject]) -> list[tuple[Workload, Container]]:
    """(workload, container) of every backup or restore container: all containers of a pod whose component label is
    backup, and the backup-only containers of the other pods."""
    out = []
    for o in objs:
        w = workload_of(o)
        if w is None:
            continue
        whole = w.pod_labels.get("app.kubernetes.io/component") == "backup"
        out += [(w, c) for c in w.containers if whole or c.name in BACKUP_CONTAINERS]
    return out


def ref(w: Workload, c: Container) -> str:
    return f"{w.kind}/{w.obj.name}: {c.name}"


def pod_or_container(w: Workload, c: Container, key: str) -> Any:
    """A securityContext field as the container sees it: its own, else the pod's."""
    return c.security_context.get(key, w.pod_security_context.get(key))


def _resources(w: Workload, c: Container) -> str | None:
    r = c.spec.get("resources") or {}
    missing = [f"{kind}.{res}" for kind in ("requests", "limits") for res in ("cpu", "memory")
               if not (r.get(kind) or {}).get(res)]
    return f"resources without {', '.join(missing)}" if missing else None


def _image_tag(w: Workload, c: Container) -> str | None:
    image = str(c.spec.get("image") or "")
    if "@sha256:" in image:
        return None
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return None if tag and tag != "latest" else f"image {image!r} has no fixed tag"


def _not_privileged(w: Workload, c: Container) -> str | None:
    return "privileged" if c.security_context.get("privileged") else None


def _no_host_namespaces(w: Workload, c: Container) -> str | None:
    shared = [k for k in ("hostPID", "hostIPC", "hostNetwork") if w.pod_spec.get(k)]
    return f"pod shares {', '.join(shared)}" if shared else None


def _no_escalation(w: Workload, c: Container) -> str | None:
    return None if c.security_context.get("allowPrivilegeEscalation") is False else "allowPrivilegeEscalation not false"


def _read_only_root(w: Workload, c: Container) -> str | None:
    return None if c.security_context.get("readOnlyRootFilesystem") is True else "readOnlyRootFilesystem not true"


def _non_root(w: Workload, c: Container) -> str | None:
    if pod_or_container(w, c, "runAsNonRoot") is not True:
        return "runAsNonRoot not true"
    return "runAsUser 0" if pod_or_container(w, c, "runAsUser") == 0 else None


def _drop_all(w: Workload, c: Container) -> str | None:
    caps = c.security_context.get("capabilities") or {}
    if caps.get("add"):
        return f"capabilities added: {caps['add']}"
    return None if "ALL" in (caps.get("drop") or []) else "capabilities.drop lacks ALL"


def _no_host_port(w: Workload, c: Container) -> str | None:
    ports = [p for p in c.spec.get("ports") or [] if p.get("hostPort")]
    return f"hostPort {ports}" if ports else None


def _no_host_path(w: Workload, c: Container) -> str | None:
    paths = [v.get("name") for v in w.pod_spec.get("volumes") or [] if "hostPath" in v]
    return f"hostPath volumes {paths}" if paths else None


def _seccomp(w: Workload, c: Container) -> str | None:
    profile = pod_or_container(w, c, "seccompProfile") or {}
    return None if profile.get("type") in ("RuntimeDefault", "Localhost") else f"seccompProfile {profile or 'unset'}"


def _no_token(w: Workload, c: Container) -> str | None:
    # Backup Jobs and restore init containers reach the repository, Redis or the pgBackRest server, never the Kubernetes
    # API. The pgBackRest sidecar shares the PostgreSQL pod, whose token Patroni's role-label callback needs (a pod-level
    # field, the postgres container's: listed as shared).
    if any(x.name == "postgres" for x in w.containers):
        return None
    return None if w.pod_spec.get("automountServiceAccountToken") is False else "service account token mounted"


def _probes(w: Workload, c: Container) -> str | None:
    # Only containers that keep running take probes (init containers and Job pods run to completion).
    if not c.long_running:
        return None
    missing = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if not c.spec.get(p)]
    return f"long-running container without {', '.join(missing)}" if missing else None


CHECKS: dict[str, Callable[[Workload, Container], str | None]] = {
    "CKV_K8S_10-13 requests and limits": _resources,
    "CKV_K8S_14 fixed image tag": _image_tag,
    "CKV_K8S_16 not privileged": _not_privileged,
    "CKV_K8S_17-19 no host namespaces": _no_host_namespaces,
    "CKV_K8S_20 no privilege escalation": _no_escalation,
    "CKV_K8S_22 read-only root filesystem": _read_only_root,
    "CKV_K8S_23 non-root": _non_root,
    "CKV_K8S_25/28/37/39 capabilities dropped": _drop_all,
    "CKV_K8S_26 no hostPort": _no_host_port,
    "CKV_K8S_27 no hostPath": _no_host_path,
    "CKV_K8S_31 seccomp profile": _seccomp,
    "CKV_K8S_38 no service account token": _no_token,
    "CKV_K8S_8/9 probes of long-running containers": _probes,
}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_every_backup_and_restore_container_is_found(name: str) -> None:
    assert sorted(ref(w, c) for w, c in backup_containers(objects(name))) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(RENDERS))
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_backup_and_restore_pods_pass_checkov_checks_the_other_workloads_pass(name: str, check: str) -> None:
    found = backup_containers(objects(name))
    assert found, f"{name}: no backup or restore container rendered"
    problems = [f"{ref(w, c)}: {p}" for w, c in found if (p := CHECKS[check](w, c))]
    assert not problems, f"{name}, {check}: " + "; ".join(problems)


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_backup_and_restore_pods_pass_the_projects_policy(name: str) -> None:
    objs = objects(name)
    pods = {(w.kind, w.obj.name) for w, _ in backup_containers(objs)}
    findings = lint(objs, load_config(ROOT / ".nova-lint.yaml"), ["1.29"])
    assert not [f for f in findings if (f.kind, f.name) in pods], [str(f) for f in findings]


def test_a_token_mount_or_a_writable_root_in_a_backup_pod_is_caught() -> None:
    """The checks are not vacuous: the same render with the fixed properties undone fails them."""
    objs = objects("postgres-backup-s3")
    (w, c), *_ = [(w, c) for w, c in backup_containers(objs) if w.kind == "CronJob"]
    pod = dict(w.pod_spec, automountServiceAccountToken=True)
    broken = Workload(w.obj, pod, w.pod_path, w.pod_labels, w.containers)
    assert _no_token(broken, c) == "service account token mounted"
    writable = Container(dict(c.spec, securityContext=dict(c.security_context, readOnlyRootFilesystem=False)),
                         c.path, c.init, c.long_running)
    assert _read_only_root(w, writable) == "readOnlyRootFilesystem not true"
    (sw, sc), = [(w, c) for w, c in backup_containers(objs) if c.name == "pgbackrest"]
    assert _probes(sw, Container({k: v for k, v in sc.spec.items() if k != "livenessProbe"}, sc.path, sc.init,
                                 sc.long_running)) == "long-running container without livenessProbe"
