"""Issue 12 in production: backups of PostgreSQL (pgBackRest) and Redis are on in values/production.yaml and point
at a repository the user names. The profile alone fails the render with one message naming the key and both
fixes (name the repository in your site overlay, values/examples/production-site.yaml; or turn that backup off);
with the example overlay it renders pgBackRest to the S3 repository on the Percona image (Patroni + pgBackRest),
uid 26 and its binDir; turned off explicitly it renders without an overlay. tools/charts.py ``profile_values``
is the one place that pairs a profile with its overlay.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, helm_path, render
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

NOVA = CHARTS / "nova"
NS = "nova-services"
DB_NS = "nova-database"
PROFILE, OVERLAY = chart_files.profile_values("production")
SITE = yaml.safe_load(OVERLAY.read_text())
PERCONA = "docker.io/percona/percona-distribution-postgresql:15.19"
PG_OFF, REDIS_OFF = "postgres.backup.enabled=false", "redis.backup.enabled=false"


def refusal(set_values: list[str], helm_major: int = 4) -> str:
    """helm's error for values/production.yaml alone (no site overlay) with ``set_values``."""
    with pytest.raises(helm.HelmError) as err:
        helm.render(NOVA, [PROFILE], set_values, helm=helm_path(helm_major), namespace=NS)
    return str(err.value)


def one(objs: list[KubeObject], kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = [o.obj for o in objs if o.kind == kind and o.name == name and o.namespace == namespace]
    assert len(found) == 1, f"{kind}/{namespace}/{name}: {[o.ref for o in objs if o.kind == kind]}"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    return spec["jobTemplate"]["spec"]["template"]["spec"] if obj["kind"] == "CronJob" else spec["template"]["spec"]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


@pytest.fixture(scope="module")
def site() -> list[KubeObject]:
    return render(NOVA, chart_files.profile_values("production"), namespace=NS)


# --- the pairing ---------------------------------------------------------------------------------------------

def test_the_production_profile_is_rendered_with_its_example_site_overlay_and_other_profiles_alone() -> None:
    assert (PROFILE, OVERLAY) == (chart_files.VALUES_DIR / "production.yaml",
                                  chart_files.VALUES_DIR / "examples" / "production-site.yaml")
    assert chart_files.profile_values(PROFILE) == [PROFILE, OVERLAY]
    assert chart_files.profile_values(str(PROFILE)) == [PROFILE, OVERLAY]
    local = chart_files.VALUES_DIR / "local.yaml"
    assert chart_files.profile_values(local) == [local] == chart_files.profile_values("local")
    ci = CHARTS / "nova" / "ci" / "render" / "external-values.yaml"
    assert chart_files.profile_values(ci) == [ci]
    # the overlay is no profile of its own (values/*.yaml is not recursive), and names a profile that exists
    assert OVERLAY not in chart_files.profiles(NOVA)
    assert chart_files.stray_site_overlays() == []
    with pytest.raises(FileNotFoundError, match="no-such: no such values profile|no-such.yaml"):
        chart_files.profile_values("no-such")


def test_an_example_overlay_without_its_profile_is_stray(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "prod.yaml").write_text("a: 1\n")
    for name in ("prod-site.yaml", "gone-site.yaml", "notes.yaml"):
        (tmp_path / "examples" / name).write_text("b: 2\n")
    assert chart_files.stray_site_overlays(tmp_path) == [tmp_path / "examples" / n for n in ("gone-site.yaml",
                                                                                              "notes.yaml")]
    assert chart_files.profile_values(tmp_path / "prod.yaml", tmp_path) == [tmp_path / "prod.yaml",
                                                                           tmp_path / "examples" / "prod-site.yaml"]


def test_merged_values_merge_maps_replace_lists_and_drop_nulls(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: {keep: 1, over: 1, gone: 1}\nl: [1, 2]\n")
    (tmp_path / "b.yaml").write_text("x: {over: 2, gone: null, new: 3}\nl: [3]\n")
    assert chart_files.merged_values([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {
        "x": {"keep": 1, "over": 2, "new": 3}, "l": [3]}


# --- production alone fails, naming the key and both fixes --------------------------------------------------

@pytest.mark.helm3
def test_production_alone_fails_naming_the_postgres_repository_keys_and_both_fixes(helm_major: int) -> None:
    message = refusal([REDIS_OFF], helm_major)
    assert "nova-postgres: postgres.backup.enabled is true but no backup repository is named" in message
    assert "postgres.backup.repository.type s3 with postgres.backup.repository.s3.endpoint" in message
    assert "in your site overlay" in message and "values/examples/production-site.yaml" in message
    assert "or set postgres.backup.enabled=false to run without backups" in message
    assert message.count("execution error") == 1


@pytest.mark.helm3
def test_production_alone_fails_naming_the_redis_repository_keys_and_both_fixes(helm_major: int) -> None:
    message = refusal([PG_OFF], helm_major)
    assert "nova-redis: redis.backup.enabled is true but the S3 repository is not named" in message
    assert "redis.backup.repository.s3.endpoint (https://...)" in message
    assert "in your site overlay" in message and "values/examples/production-site.yaml" in message
    assert "or set redis.backup.enabled=false to run without backups" in message


@pytest.mark.helm3
def test_production_alone_fails_with_one_message_that_points_at_the_overlay(helm_major: int) -> None:
    message = refusal([], helm_major)
    assert message.count("execution error") == 1
    assert "values/examples/production-site.yaml" in message
    assert ("redis.backup.enabled=false" in message) != ("postgres.backup.enabled=false" in message)


def test_the_keys_are_named_without_the_umbrella_prefix_when_the_chart_is_installed_alone() -> None:
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHARTS / "nova-postgres", set_values=["backup.enabled=true"])
    assert "nova-postgres: backup.enabled is true but no backup repository is named" in str(err.value)
    assert "postgres.backup" not in str(err.value)
    with pytest.raises(helm.HelmError) as err:
        helm.render(CHARTS / "nova-redis", set_values=["backup.enabled=true", "backup.repository.type=s3"])
    assert "nova-redis: backup.enabled is true but the S3 repository is not named" in str(err.value)
    assert "redis.backup" not in str(err.value)


def test_production_keeps_the_repository_required_and_names_none_itself() -> None:
    values = yaml.safe_load(PROFILE.read_text())
    pg, redis = values["postgres"]["backup"], values["redis"]["backup"]
    assert pg["enabled"] is True and "repository" not in pg  # required: true, type "": the chart's defaults
    assert redis["enabled"] is True
    assert not {"endpoint", "bucket", "existingSecret"} & set(redis["repository"]["s3"])


@pytest.mark.helm3
def test_backups_turned_off_explicitly_render_production_without_an_overlay(helm_major: int) -> None:
    objs = render(NOVA, [PROFILE], [PG_OFF, REDIS_OFF], namespace=NS, major=helm_major)
    assert not [o.ref for o in objs if o.kind == "CronJob" and "backup" in o.name]
    patroni = yaml.safe_load(one(objs, "ConfigMap", "postgres-patroni", DB_NS)["data"]["patroni.yml"])
    assert "archive_command" not in patroni["postgresql"]["parameters"]
    # still the Percona image: the image choice does not depend on backups
    assert pod_spec(one(objs, "StatefulSet", "postgres", DB_NS))["containers"][0]["image"] == PERCONA


# --- production with the site overlay ------------------------------------------------------------------------

def test_production_with_the_overlay_runs_postgresql_on_the_percona_image_as_uid_26(site: list[KubeObject]) -> None:
    images = {}
    for o in site:
        if o.namespace == DB_NS and o.kind in {"StatefulSet", "Job", "CronJob"} and "etcd" not in o.name:
            pod = pod_spec(o.obj)
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                images[f"{o.kind}/{o.name}/{c['name']}"] = c["image"]
                if c["image"] == PERCONA:
                    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (26, 26), c
            if any(c["image"] == PERCONA for c in pod["containers"]):
                sc = pod["securityContext"]
                assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (26, 26, 26), o.ref
    patroni_image = {k: v for k, v in images.items() if "metrics" not in k}
    assert set(patroni_image.values()) == {PERCONA}, images
    assert {"StatefulSet/postgres/postgres", "StatefulSet/postgres/pgbackrest", "CronJob/postgres-backup-full/backup",
            "CronJob/postgres-backup-diff/backup"} <= set(patroni_image)
    assert any(k.startswith("Job/postgres-bootstrap-") for k in patroni_image)
    assert any(k.startswith("Job/postgres-config-apply-") for k in patroni_image)
    patroni = yaml.safe_load(one(site, "ConfigMap", "postgres-patroni", DB_NS)["data"]["patroni.yml"])
    assert patroni["postgresql"]["bin_dir"] == "/usr/pgsql-15/bin"
    config_apply = next(o for o in site if o.kind == "Job" and o.name.startswith("postgres-config-apply-"))
    assert env(pod_spec(config_apply.obj)["containers"][0])["NOVA_PG_BIN_DIR"] == "/usr/pgsql-15/bin"
    # etcd keeps its own image
    etcd = pod_spec(one(site, "StatefulSet", "postgres-etcd", DB_NS))["containers"][0]["image"]
    assert etcd.startswith("gcr.io/etcd-development/etcd:")


def test_production_with_the_overlay_archives_wal_and_backs_up_to_the_named_s3_repository(
        site: list[KubeObject]) -> None:
    s3 = SITE["postgres"]["backup"]["repository"]["s3"]
    patroni = yaml.safe_load(one(site, "ConfigMap", "postgres-patroni", DB_NS)["data"]["patroni.yml"])
    params = patroni["postgresql"]["parameters"]
    assert (params["archive_mode"], params["archive_command"]) == ("on", "pgbackrest --stanza=postgres archive-push %p")
    assert patroni["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]
    data = one(site, "ConfigMap", "postgres-pgbackrest", DB_NS)["data"]
    for key in ("pgbackrest.conf", "pgbackrest-backup.conf"):
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_string(data[key])
        g = conf["global"]
        assert (g["repo1-type"], g["repo1-s3-endpoint"], g["repo1-s3-bucket"], g["repo1-s3-region"],
                g["repo1-storage-verify-tls"]) == ("s3", s3["endpoint"], s3["bucket"], s3["region"], "y"), key
    sts = pod_spec(one(site, "StatefulSet", "postgres", DB_NS))
    for c in sts["containers"]:
        if c["name"] in {"postgres", "pgbackrest"}:
            e = env(c)
            assert e["PGBACKREST_REPO1_S3_KEY"]["secretKeyRef"]["name"] == s3["credentialsSecret"], c["name"]
            assert e["PGBACKREST_REPO1_S3_KEY_SECRET"]["secretKeyRef"]["name"] == s3["credentialsSecret"]
    for kind in ("full", "diff"):
        job = one(site, "CronJob", f"postgres-backup-{kind}", DB_NS)
        assert env(pod_spec(job)["containers"][0])["PGBACKREST_REPO1_S3_KEY"]["secretKeyRef"]["name"] == \
            s3["credentialsSecret"]


def test_production_with_the_overlay_stores_redis_snapshots_in_the_named_s3_repository(site: list[KubeObject]) -> None:
    s3 = SITE["redis"]["backup"]["repository"]["s3"]
    job = one(site, "CronJob", "redis-backup", "nova-redis")
    store = next(c for c in pod_spec(job)["containers"] if c["name"] == "store")
    e = env(store)
    assert (e["RCLONE_CONFIG_REPO_ENDPOINT"], e["RCLONE_CONFIG_REPO_REGION"]) == (s3["endpoint"], s3["region"])
    assert e["RCLONE_CONFIG_REPO_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == s3["existingSecret"]
    assert s3["bucket"] in str(e)


def test_under_gitops_the_pgbackrest_tls_secret_must_be_named_not_generated_on_every_render() -> None:
    files = chart_files.profile_values("production")
    with pytest.raises(helm.HelmError) as err:
        helm.render(NOVA, files, ["global.gitops=true"], namespace=NS)
    assert "global.gitops is true and postgres.backup.enabled is on, but postgres.backup.server.tlsSecret is empty" \
        in str(err.value)
    objs = render(NOVA, files, ["global.gitops=true", "postgres.backup.server.tlsSecret=mine"], namespace=NS)
    assert not [o.ref for o in objs if o.kind == "Secret" and o.name == "postgres-backup-tls"]
    volumes = {v["name"]: v for v in pod_spec(one(objs, "StatefulSet", "postgres", DB_NS))["volumes"]}
    assert volumes["pgbackrest-tls"]["secret"]["secretName"] == "mine"


def test_the_example_overlay_names_only_placeholders_that_never_resolve() -> None:
    # An unedited copy must fail loudly (every backup Job), never write to somebody's real bucket.
    pg = SITE["postgres"]["backup"]["repository"]["s3"]["endpoint"]
    redis = SITE["redis"]["backup"]["repository"]["s3"]["endpoint"]
    assert pg == "s3.example.com" and redis == "https://s3.example.com"
    text = OVERLAY.read_text()
    assert text.count("# CHANGE") >= 8, "every value a site must replace is marked"


def test_the_secrets_the_overlay_names_are_declared_external_to_the_linter() -> None:
    lint = yaml.safe_load((chart_files.REPO_ROOT / ".nova-lint.yaml").read_text())
    external = lint["rules"]["config-references"]["external-secrets"]
    assert SITE["postgres"]["backup"]["repository"]["s3"]["credentialsSecret"] in external
    assert SITE["redis"]["backup"]["repository"]["s3"]["existingSecret"] in external


def test_the_message_the_guides_quote_is_the_one_helm_prints() -> None:
    printed = next(ln for ln in refusal([REDIS_OFF]).splitlines() if "execution error" in ln).split("): ", 1)[1]
    for doc in ("docs/deployment-guide.md", "docs/disaster-recovery.md"):
        quoted = re.findall(r"```text\n(nova-postgres: .*?)```", (chart_files.REPO_ROOT / doc).read_text(), re.DOTALL)
        assert [" ".join(q.split()) for q in quoted] == [printed], doc
