"""charts/nova-postgres backup.* and restore.*: what renders, and which bad values fail the render and how."""

from __future__ import annotations

import configparser
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova-postgres"
S3 = CHART / "ci" / "render" / "backup-s3-values.yaml"
PITR = CHART / "ci" / "render" / "restore-pitr-pvc-values.yaml"
NS = "nova-database"
PERCONA = ("image.repository=percona/percona-distribution-postgresql",)


def objs(values: tuple[str, ...] = (), set_values: tuple[str, ...] = ()) -> list[KubeObject]:
    return render(CHART, values, set_values, namespace=NS)


@pytest.fixture(scope="module")
def s3() -> list[KubeObject]:
    return objs((str(S3),))


@pytest.fixture(scope="module")
def pitr() -> list[KubeObject]:
    return objs((str(PITR),))


def one(objects: list[KubeObject], kind: str, name: str) -> dict[str, Any]:
    found = [o.obj for o in objects if o.kind == kind and o.name == name]
    assert len(found) == 1, f"{kind}/{name}: {[o.ref for o in objects if o.kind == kind]}"
    return found[0]


def ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(text)
    return cp


def patroni(objects: list[KubeObject]) -> dict[str, Any]:
    return yaml.safe_load(one(objects, "ConfigMap", "nova-postgres-patroni")["data"]["patroni.yml"])


def render_error(*set_values: str) -> str:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHART, set_values=set_values, namespace=NS)
    return str(err.value)


def test_defaults_render_no_backup_objects_and_no_archiving() -> None:
    o = objs()
    assert not [x.ref for x in o if (x.kind == "CronJob" and "defrag" not in x.name) or "pgbackrest" in x.name
                or "backup" in x.name]  # the etcd defragmentation CronJob is not a backup
    params = patroni(o)["postgresql"]["parameters"]
    assert "archive_command" not in params
    assert [c["name"] for c in one(o, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]["containers"]] \
        == ["postgres"]


def test_s3_backups_archive_every_wal_and_schedule_full_and_differential_jobs(s3: list[KubeObject]) -> None:
    cfg = patroni(s3)["postgresql"]
    assert cfg["parameters"]["archive_mode"] == "on"
    assert cfg["parameters"]["archive_command"] == "pgbackrest --stanza=nova-postgres archive-push %p"
    assert cfg["recovery_conf"]["restore_command"] == 'pgbackrest --stanza=nova-postgres archive-get %f "%p"'
    assert cfg["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert cfg["pgbackrest"]["keep_data"] is True
    crons = {o.name: o.obj for o in s3 if o.kind == "CronJob" and "-backup-" in o.name}
    assert sorted(crons) == ["nova-postgres-backup-diff", "nova-postgres-backup-full"]
    full = crons["nova-postgres-backup-full"]["spec"]
    assert full["concurrencyPolicy"] == "Forbid"
    assert full["jobTemplate"]["spec"]["backoffLimit"] == 0
    container = full["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "/etc/pgbackrest/pgbackrest-backup.sh", "full"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGBACKREST_REPO1_S3_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "nova-s3-backup", "key": "access-key"}


def test_pgbackrest_conf_holds_the_repository_but_no_credentials(s3: list[KubeObject]) -> None:
    data = one(s3, "ConfigMap", "nova-postgres-pgbackrest")["data"]
    pods = ini(data["pgbackrest.conf"])
    assert pods["global"]["repo1-type"] == "s3"
    assert pods["global"]["repo1-s3-bucket"] == "nova-backups"
    assert pods["global"]["repo1-storage-verify-tls"] == "y"
    assert pods["global"]["tls-server-auth"] == "pgbackrest-backup=nova-postgres"
    assert pods["nova-postgres"]["pg1-path"] == "/home/postgres/pgdata/pgroot/data"
    job = ini(data["pgbackrest-backup.conf"])
    assert job["global"]["backup-standby"] == "y"
    hosts = [job["nova-postgres"][f"pg{i}-host"] for i in (1, 2, 3)]
    assert hosts == [f"nova-postgres-{i}.nova-postgres-headless.{NS}.svc.cluster.local" for i in range(3)]
    for text in data.values():
        assert "key-secret" not in text and "repo1-s3-key=" not in text


def test_backup_pods_and_sidecar_run_restricted_with_probes_and_limits(s3: list[KubeObject]) -> None:
    sts = one(s3, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]
    cron = one(s3, "CronJob", "nova-postgres-backup-full")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    sidecar = next(c for c in sts["containers"] if c["name"] == "pgbackrest")
    assert sidecar["command"] == ["pgbackrest", "server"]
    assert sidecar["livenessProbe"] and sidecar["readinessProbe"]
    assert cron["automountServiceAccountToken"] is False
    for spec, c in ((sts, sidecar), (cron, cron["containers"][0])):
        assert spec["securityContext"]["runAsUser"] == 26 and spec["securityContext"]["runAsNonRoot"] is True
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    tls = {v["name"]: v for v in cron["volumes"]}["tls"]["secret"]
    assert [i["key"] for i in tls["items"]] == ["ca.crt", "client.crt", "client.key"]  # no server key in the Job


def test_only_the_backup_job_reaches_the_pgbackrest_port(s3: list[KubeObject]) -> None:
    rules = one(s3, "NetworkPolicy", "nova-postgres")["spec"]["ingress"]
    to_server = [r for r in rules if {"port": "pgbackrest"} in r["ports"]]
    assert len(to_server) == 1
    assert to_server[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "backup"
    assert one(s3, "NetworkPolicy", "nova-postgres-backup")["spec"]["policyTypes"] == ["Ingress"]


def test_restore_bootstraps_through_patroni_with_the_target_and_no_new_jobs_for_a_restore_only(
        pitr: list[KubeObject]) -> None:
    boot = patroni(pitr)["bootstrap"]
    assert boot["method"] == "pgbackrest"
    assert boot["pgbackrest"]["keep_existing_recovery_conf"] is True
    assert boot["pgbackrest"]["command"] == (
        "/usr/bin/env python3 /etc/pgbackrest/pgbackrest-restore.py --stanza=nova-postgres "
        "--data-dir=/home/postgres/pgdata/pgroot/data '--target-time=2026-12-01 12:00:00+00'")
    sts = one(pitr, "StatefulSet", "nova-postgres")["spec"]["template"]["spec"]
    assert {"name": "pgbackrest-repo", "persistentVolumeClaim": {"claimName": "nova-backup-repo"}} in sts["volumes"]
    assert not [o.ref for o in pitr if o.kind == "PersistentVolumeClaim"]  # an existing claim is not created


@pytest.mark.parametrize(("set_values", "message"), [
    (("backup.enabled=true",), ("backup.enabled is true but no backup repository is named: name yours in your site "
                               "overlay, backup.repository.type s3 with backup.repository.s3.endpoint")),
    (("backup.enabled=true", "backup.repository.type=pvc"), "Spilo ships WAL-G"),
    ((*PERCONA, "backup.enabled=true", "backup.repository.type=s3", "backup.repository.s3.bucket=b"),
     "set backup.repository.s3.endpoint"),
    ((*PERCONA, "backup.enabled=true", "backup.repository.type=s3", "backup.repository.s3.endpoint=https://x",
      "backup.repository.s3.bucket=b"), "must be a host name without scheme"),
    ((*PERCONA, "backup.enabled=true", "backup.repository.type=s3", "backup.repository.s3.endpoint=x",
      "backup.repository.s3.bucket=b"), "set backup.repository.s3.credentialsSecret"),
    ((*PERCONA, "backup.enabled=true", "backup.repository.type=pvc", "walArchive.enabled=true",
      "walArchive.archiveCommand=x"), "backup.* replaces walArchive.*"),
    ((*PERCONA, "backup.repository.type=pvc", "restore.fromBackup=true", "restore.targetTime=yesterday"),
     "restore.targetTime \"yesterday\" must be an ISO 8601 time with a zone"),
    ((*PERCONA, "backup.repository.type=pvc", "restore.fromBackup=true", "restore.targetTime=2026-12-01 12:00:00"),
     "must be an ISO 8601 time with a zone"),
    ((*PERCONA, "backup.repository.type=pvc", "restore.fromBackup=true", "restore.targetTime=2026-12-01T12:00:00Z",
      "restore.targetName=x"), "set one of restore.targetTime and restore.targetName"),
    (("restore.targetTime=2026-12-01T12:00:00Z",), "read only with restore.fromBackup=true"),
    (("restore.fromBackup=true",), "restore.fromBackup needs the repository"),
])
def test_bad_backup_values_fail_the_render_naming_the_key(set_values: tuple[str, ...], message: str) -> None:
    assert message in render_error(*set_values)


def test_without_required_a_missing_repository_renders_without_backups() -> None:
    # repository.required false: backup.enabled without a repository renders, with nothing archived and no Job
    # (values/production.yaml keeps it true; tests/unit/test_production_backups.py).
    o = objs((), ("backup.enabled=true", "backup.repository.required=false"))
    assert not [x.ref for x in o if x.kind == "CronJob" and "backup" in x.name]
    assert "archive_command" not in patroni(o)["postgresql"]["parameters"]
    assert "no backup repository is named" in render_error("backup.enabled=true", "backup.repository.required=true")