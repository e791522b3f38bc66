"""charts/nova-redis backups (CronJob <fullname>-backup) and restore (init containers): assertions on the rendered
objects. The behaviour on real daemons is tests/runtime/test_redis_backup.py's; docs/redis.md "Backups and restore"."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import CHARTS, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova-redis"
ROOT = CHARTS.parent
NS = "nova-redis"
PV = ("backup.enabled=true", "backup.repository.pv.existingClaim=redis-backups")
S3 = ("backup.enabled=true", "backup.repository.type=s3", "backup.repository.s3.endpoint=https://s3.example.com:9000",
      "backup.repository.s3.bucket=nova-backups", "backup.repository.s3.existingSecret=s3-keys",
      "backup.repository.s3.caSecret.name=s3-ca")


def objects(set_values: tuple[str, ...] = (), major: int = 4) -> list[KubeObject]:
    return render(CHART, [], list(set_values), major=major, namespace=NS)


def one(objs: list[KubeObject], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o.obj for o in objs if o.kind == kind and (name is None or o.name == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o.name for o in objs if o.kind == kind]}"
    return found[0]


def job_pod(objs: list[KubeObject]) -> dict[str, Any]:
    return dict(one(objs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


def test_off_by_default_nothing_rendered_and_no_init_containers() -> None:
    objs = objects()
    assert not [o for o in objs if "backup" in o.name]
    assert "initContainers" not in one(objs, "StatefulSet")["spec"]["template"]["spec"]


def test_pv_backup_job_snapshots_from_the_redis_image_and_stores_into_the_claim_restricted() -> None:
    objs = objects(PV)
    cj = one(objs, "CronJob")
    assert cj["metadata"]["name"] == "nova-redis-backup"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job_pod(objs)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    snapshot, = pod["initContainers"]
    store, = pod["containers"]
    assert (snapshot["name"], store["name"]) == ("snapshot", "store")
    redis_image = one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert snapshot["image"] == store["image"] == redis_image
    assert snapshot["command"] == ["/bin/sh", "/opt/nova-redis-backup/snapshot.sh"]
    env = env_of(snapshot)
    assert env["NOVA_REDIS_NODES"].split() == [f"nova-redis-{i}.nova-redis-headless.nova-redis.svc.cluster.local" for i in range(3)]
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "nova-redis", "key": "redis-password"}}
    assert env["SENTINEL_PASSWORD"] == {"secretKeyRef": {"name": "nova-redis", "key": "sentinel-password"}}
    assert env_of(store)["BACKUP_PV_DIR"] == "/repository" and env_of(store)["BACKUP_KEEP"] == "7"
    assert {"name": "backup-repository", "mountPath": "/repository", "readOnly": False} in store["volumeMounts"]
    assert by_name(pod["volumes"])["backup-repository"]["persistentVolumeClaim"] == {"claimName": "redis-backups", "readOnly": False}
    for c in (snapshot, store):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]
    # The scripts ConfigMap holds the chart's files as they are.
    data = one(objs, "ConfigMap", "nova-redis-backup")["data"]
    for name in ("lib.sh", "snapshot.sh", "store.sh", "restore.sh"):
        assert data[name].rstrip("\n") == (CHART / "files/backup" / name).read_text().rstrip("\n"), name


def test_s3_store_runs_rclone_configured_by_env_with_the_secret_and_ca() -> None:
    objs = objects(S3)
    store = job_pod(objs)["containers"][0]
    assert store["image"] == "docker.io/rclone/rclone:1.68.2"
    env = env_of(store)
    assert env["BACKUP_S3_TARGET"] == "repo:nova-backups/redis"
    assert env["RCLONE_CONFIG_REPO_ENDPOINT"] == "https://s3.example.com:9000"
    assert env["RCLONE_CONFIG_REPO_ENV_AUTH"] == "false"
    assert env["RCLONE_CONFIG_REPO_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3-keys", "key": "access-key-id"}}
    assert env["RCLONE_CONFIG_REPO_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "s3-keys", "key": "secret-access-key"}}
    assert env["RCLONE_CA_CERT"] == "/etc/nova-redis-backup/ca/ca.crt"
    assert env["HOME"] == env["RCLONE_CONFIG"].rsplit("/", 1)[0] == "/tmp"  # nothing written outside /tmp
    assert by_name(job_pod(objs)["volumes"])["backup-ca"]["secret"] == {"secretName": "s3-ca"}
    # No Secret: workload identity (rclone's env_auth), no key references at all.
    wi = env_of(job_pod(objects((*S3, "backup.repository.s3.existingSecret=")))["containers"][0])
    assert wi["RCLONE_CONFIG_REPO_ENV_AUTH"] == "true" and "RCLONE_CONFIG_REPO_ACCESS_KEY_ID" not in wi


def test_backup_network_policy_allows_only_dns_redis_sentinel_and_the_repository_port() -> None:
    objs = objects(S3)
    np = one(objs, "NetworkPolicy", "nova-redis-backup")["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in np
    assert np["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "backup"
    dns, redis_rule, repo = np["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert redis_rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
    assert [p["port"] for p in redis_rule["ports"]] == ["redis", "sentinel"]
    assert repo["ports"] == [{"port": 9000, "protocol": "TCP"}]
    # PV: no repository egress; the Redis pods admit the backup pods on both ports.
    pv = objects(PV)
    assert len(one(pv, "NetworkPolicy", "nova-redis-backup")["spec"]["egress"]) == 2
    ingress = one(pv, "NetworkPolicy", "nova-redis")["spec"]["ingress"]
    backup_rule = next(r for r in ingress if r["from"][0].get("podSelector", {}).get("matchLabels", {})
                       .get("app.kubernetes.io/component") == "backup")
    assert [p["port"] for p in backup_rule["ports"]] == ["redis", "sentinel"]


def test_restore_init_containers_run_before_the_users_and_read_the_repository_read_only() -> None:
    extra = ("redis.extraInitContainers[0].name=mine", "redis.extraInitContainers[0].image=busybox:1.36")
    pod = one(objects((*PV, "restore.fromSnapshot=nova-redis-20261201T061700Z.rdb", *extra)), "StatefulSet")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["restore", "mine"]
    restore = pod["initContainers"][0]
    assert restore["command"] == ["/bin/sh", "/opt/nova-redis-backup/restore.sh", "install"]
    assert env_of(restore)["RESTORE_SNAPSHOT"] == "nova-redis-20261201T061700Z.rdb"
    assert {"name": "backup-repository", "mountPath": "/repository", "readOnly": True} in restore["volumeMounts"]
    assert {"name": "data", "mountPath": "/data"} in restore["volumeMounts"]
    assert by_name(pod["volumes"])["backup-repository"]["persistentVolumeClaim"]["readOnly"] is True
    # S3: rclone fetches first, the Redis image checks and lays it out; restore works with backups off.
    s3 = one(objects((*S3, "backup.enabled=false", "restore.fromSnapshot=latest")), "StatefulSet")["spec"]["template"]["spec"]
    assert [(c["name"], c["image"].split("/")[-1]) for c in s3["initContainers"]] == [
        ("restore-fetch", "rclone:1.68.2"), ("restore", "redis:7.2.5-bookworm")]


@pytest.mark.helm3
@pytest.mark.parametrize(("set_values", "message"), [
    (("backup.enabled=true",), "backup.repository.pv.existingClaim is empty"),
    (("restore.fromSnapshot=latest",), "backup.repository.pv.existingClaim is empty"),
    (("backup.enabled=true", "backup.repository.type=s3"), "the S3 repository is not named: name yours in your site overlay, backup.repository.s3.endpoint (https://...), .bucket"),
    ((*S3, "backup.repository.s3.endpoint=http://minio:9000"), "backup.repository.s3.endpoint \"http://minio:9000\" must be an https:// URL"),
    ((*S3, "backup.repository.s3.bucket=Bad_Bucket"), "backup.repository.s3.bucket \"Bad_Bucket\" is not a valid bucket name"),
    ((*PV, "restore.fromSnapshot=../etc/passwd"), "restore.fromSnapshot \"../etc/passwd\" must be a snapshot file name"),
    ((*PV, "redis.extraInitContainers[0].name=restore", "redis.extraInitContainers[0].image=x:1",
      "restore.fromSnapshot=latest"), "redis.extraInitContainers[0].name=restore: the pod already has one of that name"),
])
def test_bad_backup_values_fail_naming_the_key(helm_major: int, set_values: tuple[str, ...], message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(CHART, [], list(set_values), major=helm_major, namespace=NS)
    assert message in str(err.value)


def test_production_backs_up_to_s3_and_fails_without_a_named_repository_unless_turned_off() -> None:
    nova = CHARTS / "nova"
    production = chart_files.profile_values("production")
    objs = render(nova, production, namespace="nova-services")
    cj = one(objs, "CronJob", "redis-backup")
    assert cj["metadata"]["namespace"] == "nova-redis"
    assert env_of(job_pod([o for o in objs if o.kind == "CronJob" and o.name == "redis-backup"])["containers"][0])[
        "BACKUP_S3_TARGET"] == f"repo:{chart_files.merged_values(production)['redis']['backup']['repository']['s3']['bucket']}/redis"
    with pytest.raises(helm.HelmError) as err:
        render(nova, production, ["redis.backup.repository.s3.bucket="], namespace="nova-services")
    assert "backup.enabled is true but the S3 repository is not named" in str(err.value)
    off = render(nova, production, ["redis.backup.enabled=false"], namespace="nova-services")
    assert not [o for o in off if o.kind == "CronJob" and o.name == "redis-backup"]
    # The local profile leaves backups off.
    local = render(nova, [ROOT / "values" / "local.yaml"], namespace="nova")
    assert not [o for o in local if "redis-backup" in o.name]


def test_backup_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    scripts = sorted(p.name for p in (CHART / "files/backup").glob("*.sh"))
    assert scripts == ["lib.sh", "restore.sh", "snapshot.sh", "store.sh"]
    proc = subprocess.run(["shellcheck", "-s", "sh", "-x", *scripts], cwd=CHART / "files/backup",
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_the_restore_bench_refusing_its_key_count_says_why_in_its_last_json_line_and_starts_nothing() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "restore_redis.py"), "--keys", "0"],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last == {"bench": "restore_redis", "error": "--keys must be at least 1, got 0"}


def test_with_tls_the_snapshot_step_speaks_tls_with_the_ca_only() -> None:
    """Production turns TLS on (Redis and Sentinel TLS-only) and backups on: the snapshot step's redis-cli must
    use --tls with the chart's CA (files/backup/snapshot.sh reads NOVA_REDIS_TLS_DIR like files/redis/common.sh)."""

    objs = render(CHARTS / "nova", chart_files.profile_values("production"))
    cron = next(o for o in objs if o.kind == "CronJob" and o.name == "redis-backup")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    snapshot = next(c for c in pod["initContainers"] if c["name"] == "snapshot")
    env = {e["name"]: e.get("value") for e in snapshot["env"]}
    mount = next(m for m in snapshot["volumeMounts"] if m["name"] == "tls-ca")
    assert env["NOVA_REDIS_TLS_DIR"] == mount["mountPath"]
    volume = next(v for v in pod["volumes"] if v["name"] == "tls-ca")
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "the CA only, never the key"
    script = next(o for o in objs if o.kind == "ConfigMap" and o.name == "redis-backup")["data"]["snapshot.sh"]
    assert '--tls --cacert "$NOVA_REDIS_TLS_DIR/ca.crt"' in script
