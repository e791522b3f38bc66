"""charts/nova credentials: one render gives the same password to the database side and the service side, the
subcharts are pointed at the umbrella's Secrets, existing Secrets replace generation item by item, and no
password is a default in values.yaml."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tests.unit import keypair
from tools import charts as chart_files
from tools import helm
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
CI = CHART / "ci"
SERVICES = ["auth-service", "messaging-service", "search-service", "streaming-api", "user-service"]
LOGINS = {"user-service": "user_service", "auth-service": "auth_service", "search-service": "search_service",
          "streaming-api": "streaming_api", "messaging-service": "messaging_service"}


def decoded(secret: KubeObject) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def secrets(objs: list[KubeObject]) -> dict[tuple[str | None, str], KubeObject]:
    return {(o.namespace, o.name): o for o in objs if o.kind == "Secret"}


def main_env(objs: list[KubeObject], service: str) -> dict[str, Any]:
    dep = next(o for o in objs if o.kind == "Deployment" and o.name == f"nova-{service}")
    c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == service)
    return {"envFrom": c.get("envFrom", []), "env": {e["name"]: e for e in c.get("env", [])},
            "volumes": dep["spec"]["template"]["spec"]["volumes"], "mounts": c.get("volumeMounts", [])}


def secret_refs(obj: Any) -> set[str]:
    """Every Secret name an object refers to (secretKeyRef, secretRef, secret volumes, projected)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in {"secretKeyRef", "secretRef"} and isinstance(value, dict) and "name" in value:
                found.add(value["name"])
            elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                found.add(value["secretName"])
            else:
                found |= secret_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= secret_refs(item)
    return found


def test_one_render_gives_database_and_services_the_same_passwords(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    s = secrets(objs)
    redis = decoded(s[("nova-redis", "nova-redis-credentials")])
    pg = decoded(s[("nova-database", "nova-postgres-credentials")])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", redis["redis-password"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", redis["sentinel-password"])
    assert redis["sentinel-password"] != redis["redis-password"], "Sentinel has its own password"
    assert {"superuser-password", "replication-password", "rest-password"} <= set(pg)
    passwords = [v for k, v in pg.items()]
    assert len(set(passwords)) == len(passwords), "every credential gets its own password"
    for service, login in LOGINS.items():
        own = decoded(s[("nova-services", f"nova-{service}")])
        assert own["DATABASE_USER"] == login
        assert own["DATABASE_PASSWORD"] == pg[f"{login}-password"], service
        assert own["DATABASE_URL"] == (
            f"postgresql://{login}:{pg[f'{login}-password']}@"
            f"postgres-pooler-rw.nova-database.svc.cluster.local:6432/{own['DATABASE_NAME']}"
            "?sslmode=verify-full&sslrootcert=/etc/nova/ca/ca.crt")  # production pools and requires TLS
        user = ACL_USERS[service][0]
        assert own["REDIS_PASSWORD"] == redis[f"acl-{user}-password"], service
        assert own["REDIS_SENTINEL_PASSWORD"] == redis["sentinel-password"], service
        assert own["REDIS_URL"] == (
            f"rediss://{user}:{redis[f'acl-{user}-password']}@redis-master.nova-redis.svc.cluster.local:6379/0")
        env = main_env(objs, service)
        assert {"secretRef": {"name": f"nova-{service}"}} in env["envFrom"]
        assert "DATABASE_PASSWORD" not in env["env"], "generated values come in through envFrom"


# Production: each service's own Redis ACL user and key prefix (spec P0 "all services share one Redis").
ACL_USERS = {"user-service": ("user_service", "user:"), "auth-service": ("auth_service", "auth:"),
             "search-service": ("search_service", "search:"), "streaming-api": ("streaming_api", "streaming:"),
             "messaging-service": ("messaging_service", "messaging:")}


def test_production_gives_each_service_its_own_redis_user_key_prefix_and_password(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    s = secrets(objs)
    redis = decoded(s[("nova-redis", "nova-redis-credentials")])
    own = {svc: decoded(s[("nova-services", f"nova-{svc}")]) for svc in SERVICES}
    assert {svc: (d["REDIS_USERNAME"], d["REDIS_KEY_PREFIX"]) for svc, d in own.items()} == ACL_USERS
    users = [d["REDIS_USERNAME"] for d in own.values()]
    prefixes = [d["REDIS_KEY_PREFIX"] for d in own.values()]
    assert len(set(users)) == 5 and "default" not in users
    assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)], "prefixes overlap"
    passwords = [d["REDIS_PASSWORD"] for d in own.values()]
    assert len(set(passwords)) == 5
    assert redis["redis-password"] not in passwords, "no service gets the default user's password"
    for svc, d in own.items():
        assert redis["redis-password"] not in d["REDIS_URL"], svc
        assert d["REDIS_SENTINEL_PASSWORD"] == redis["sentinel-password"] != redis["redis-password"]
    # The nova-redis chart creates exactly these users (it reads their password keys).
    sts = json.dumps([o.obj for o in objs if "charts/redis/" in (o.source or "") and o.kind == "StatefulSet"])
    for u in users:
        assert f'"key": "acl-{u}-password"' in sts, u


def test_each_service_has_its_own_login_and_database(helm_major: int) -> None:
    s = secrets(render(CHART, major=helm_major))
    databases = {svc: decoded(s[("default", f"nova-{svc}")])["DATABASE_NAME"] for svc in SERVICES}
    assert databases == {"user-service": "nova_core", "auth-service": "nova_core", "streaming-api": "nova_core",
                         "messaging-service": "nova_messaging", "search-service": "nova_search"}
    users = [decoded(s[("default", f"nova-{svc}")])["DATABASE_USER"] for svc in SERVICES]
    assert len(set(users)) == len(users)


def test_subcharts_use_the_umbrella_secrets_instead_of_generating_their_own(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major)
    redis_objs = [o for o in objs if (o.source or "").startswith("nova/charts/redis/")]
    pg_objs = [o for o in objs if (o.source or "").startswith("nova/charts/postgres/")]
    assert redis_objs and pg_objs
    assert "nova-redis-credentials" in secret_refs([o.obj for o in redis_objs])
    assert "nova-postgres-credentials" in secret_refs([o.obj for o in pg_objs])
    # Exactly one Secret holds each password: the subcharts render none of their own.
    holders = [o.ref for o in objs if o.kind == "Secret" and "redis-password" in (o.get("data") or {})]
    assert holders == ["Secret/nova-redis/nova-redis-credentials"]
    holders = [o.ref for o in objs if o.kind == "Secret" and "superuser-password" in (o.get("data") or {})]
    assert holders == ["Secret/nova-database/nova-postgres-credentials"]


def test_every_login_the_postgres_chart_creates_gets_a_password(helm_major: int) -> None:
    objs = render(CHART, set_values=["postgres.isolation.logins.reporting.database=nova_core",
                                     "postgres.isolation.logins.reporting.schema=users"], major=helm_major)
    pg = decoded(secrets(objs)[("default", "nova-postgres-credentials")])
    assert {f"{login}-password" for login in LOGINS.values()} | {"reporting-password"} <= set(pg)


def test_generated_credentials_are_kept_on_uninstall_and_skipped_by_argo_cd(helm_major: int) -> None:
    s = secrets(render(CHART, major=helm_major))
    for name in ("nova-redis-credentials", "nova-postgres-credentials", "nova-jwt", "nova-turn"):
        annotations = s[("default", name)]["metadata"]["annotations"]
        assert annotations == {"helm.sh/resource-policy": "keep", "argocd.argoproj.io/hook": "Skip"}, name
    # The per-service copies carry generated values too, so Argo CD must not apply them either.
    assert s[("default", "nova-user-service")]["metadata"]["annotations"] == {"argocd.argoproj.io/hook": "Skip"}


def test_jwt_keys_are_a_p256_key_with_its_certificate_and_only_auth_service_gets_the_private_key(
    helm_major: int,
) -> None:
    objs = render(CHART, major=helm_major)
    jwt = decoded(secrets(objs)[("default", "nova-jwt")])
    assert jwt["private-key.pem"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert jwt["certificate.pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert keypair.facts(jwt["private-key.pem"], jwt["certificate.pem"]) == ("ec", 256)
    for service in SERVICES:
        env = main_env(objs, service)
        vol = next(v for v in env["volumes"] if v["name"] == "jwt")
        keys = {i["key"] for i in vol["secret"]["items"]}
        if service == "auth-service":
            assert keys == {"private-key.pem", "certificate.pem"}
            assert env["env"]["JWT_PRIVATE_KEY_FILE"]["value"] == "/etc/nova/jwt/private-key.pem"
        else:
            assert keys == {"certificate.pem"}, service
            assert "JWT_PRIVATE_KEY_FILE" not in env["env"]


def test_jwt_key_type_rsa_makes_the_rsa_2048_pair_of_rs256_and_an_unknown_type_is_refused_by_name() -> None:
    objs = render(CHART, set_values=["secrets.jwt.keyType=rsa"])
    jwt = decoded(secrets(objs)[("default", "nova-jwt")])
    assert jwt["private-key.pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert keypair.facts(jwt["private-key.pem"], jwt["certificate.pem"]) == ("rsa", 2048)
    with pytest.raises(helm.HelmError) as err:
        render(CHART, set_values=["secrets.jwt.keyType=ed25519"])
    assert "secrets" in str(err.value) and "keyType" in str(err.value) and "ecdsa" in str(err.value)

def test_turn_secret_reaches_streaming_and_messaging_and_apns_is_off_without_a_certificate(
    helm_major: int,
) -> None:
    objs = render(CHART, major=helm_major)
    turn = decoded(secrets(objs)[("default", "nova-turn")])["turn-secret"]
    assert len(turn) == 64
    for service in SERVICES:
        env = main_env(objs, service)["env"]
        if service in {"streaming-api", "messaging-service"}:
            assert env["TURN_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "nova-turn", "key": "turn-secret"}
        else:
            assert "TURN_SECRET" not in env
    cm = next(o for o in objs if o.kind == "ConfigMap" and o.name == "nova-messaging-service-config")
    assert cm["data"]["APNS_ENABLED"] == "false"


def test_kafka_brokers_are_a_comma_list_in_each_service_secret(helm_major: int) -> None:
    objs = render(CHART, set_values=["secrets.kafka.brokers={k1:9092,k2:9092}"], major=helm_major)
    for service in SERVICES:
        assert decoded(secrets(objs)[("default", f"nova-{service}")])["KAFKA_BROKERS"] == "k1:9092,k2:9092"


def test_existing_secrets_replace_every_generated_value(helm_major: int) -> None:
    objs = render(CHART, [CI / "render" / "existing-secrets-values.yaml"], major=helm_major)
    rendered = secrets(objs)
    # Only the per-service connection settings are rendered, with no password in them and no Argo CD skip.
    assert sorted(name for _, name in rendered) == sorted(f"nova-{s}" for s in SERVICES)
    for (_, name), secret in rendered.items():
        data = decoded(secret)
        assert not {"DATABASE_PASSWORD", "REDIS_PASSWORD", "DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS"} & set(data)
        assert "annotations" not in secret["metadata"], name
    for service, login in LOGINS.items():
        env = main_env(objs, service)
        e = env["env"]
        assert e["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "nova-postgres-own",
                                                                      "key": f"{login}-password"}
        assert e["DATABASE_URL"]["value"] == (
            "postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@$(DATABASE_HOST):$(DATABASE_PORT)/$(DATABASE_NAME)")
        assert e["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "nova-redis-own", "key": "redis-password"}
        assert e["REDIS_SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "nova-redis-own", "key": "sentinel-password", "optional": True}
        assert e["KAFKA_BROKERS"]["valueFrom"]["secretKeyRef"] == {"name": "nova-kafka", "key": "kafka-brokers"}
        assert e["TLS_CERT_FILE"]["value"] == "/etc/nova/tls/tls.crt"
        vols = {v["name"]: v for v in env["volumes"]}
        assert vols["jwt"]["secret"]["secretName"] == "nova-jwt-keys"
        assert vols["tls"]["secret"]["secretName"] == "nova-tls"
        if service == "messaging-service":
            assert vols["apns"]["secret"]["secretName"] == "nova-apns"
            assert e["APNS_CERT_FILE"]["value"] == "/etc/nova/apns/apns-cert.pem"
    # The subcharts read the same existing Secrets.
    assert "nova-redis-own" in secret_refs([o.obj for o in objs if "charts/redis/" in (o.source or "")])
    assert "nova-postgres-own" in secret_refs([o.obj for o in objs if "charts/postgres/" in (o.source or "")])


def test_external_dependencies_take_passwords_from_existing_secrets(helm_major: int) -> None:
    objs = render(CHART, [CI / "render" / "external-values.yaml"], major=helm_major)
    assert not [o for o in objs if (o.source or "").startswith("nova/charts/")]
    data = decoded(secrets(objs)[("default", "nova-user-service")])
    assert data["DATABASE_HOST"] == "pg-primary.db.example.internal"
    assert data["DATABASE_READ_HOST"] == "pg-replicas.db.example.internal"
    assert data["REDIS_SENTINEL_ADDRS"] == "sentinel-0.redis.example.internal:26379,sentinel-1.redis.example.internal:26379"
    assert data["REDIS_HOST"] == "redis-master.redis.example.internal"
    env = main_env(objs, "user-service")["env"]
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "nova-external-db"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "nova-external-redis"


def test_disabled_postgres_without_an_external_database_is_refused_with_the_key_to_set() -> None:
    with pytest.raises(helm.HelmError, match=r"postgres\.enabled=false: set externalDatabase\.(host|existingSecret)"):
        render(CHART, set_values=["postgres.enabled=false"])


def test_an_empty_redis_existing_secret_is_refused_because_the_umbrella_owns_the_password() -> None:
    with pytest.raises(helm.HelmError, match=r'redis\.auth\.existingSecret is empty: .*"nova-redis-credentials"'):
        render(CHART, set_values=["redis.auth.existingSecret="])


def test_no_password_or_key_is_a_literal_default_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    offending = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, str) and node and re.search(r"(password|secret|token|key)$", path.lower()):
            if path.endswith("existingSecret") and "{{ .Release.Name }}" in node:
                return  # the tpl name of the Secret this chart generates
            offending.append(f"{path}={node!r}")

    walk(values, "")
    assert not offending, offending


def test_helm_template_generates_fresh_values_each_render_so_gitops_must_use_existing_secrets() -> None:
    """Documents the no-lookup behaviour (docs/secrets.md): two renders differ, hence the Argo CD skip."""
    first = helm.render(CHART, PRODUCTION)
    second = helm.render(CHART, PRODUCTION)
    a = decoded(secrets(first)[("nova-redis", "nova-redis-credentials")])["redis-password"]
    b = decoded(secrets(second)[("nova-redis", "nova-redis-credentials")])["redis-password"]
    assert a != b


def test_a_service_login_the_postgres_chart_does_not_create_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"user-service\.database\.login=users_v2 is not a login the nova-postgres "
                                             r"chart creates: add postgres\.isolation\.logins\.users_v2"):
        render(CHART, set_values=["services.microservices.user-service.database.login=users_v2"])


def test_a_service_database_other_than_its_logins_database_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"search-service\.database\.name=nova_core but "
                                             r"postgres\.isolation\.logins\.search_service\.database=nova_search"):
        render(CHART, set_values=["services.microservices.search-service.database.name=nova_core"])


ACL = ["redis.aclUsers.user_service.keyPrefix=user:", "services.microservices.user-service.redis.user=user_service"]


def test_a_service_with_its_own_redis_acl_user_gets_that_users_password_and_prefix(helm_major: int) -> None:
    objs = render(CHART, set_values=ACL, major=helm_major)
    s = secrets(objs)
    redis = decoded(s[("default", "nova-redis-credentials")])
    assert set(redis) == {"redis-password", "sentinel-password", "acl-user_service-password"}
    assert redis["acl-user_service-password"] != redis["redis-password"]
    user = decoded(s[("default", "nova-user-service")])
    assert user["REDIS_USERNAME"] == "user_service" and user["REDIS_KEY_PREFIX"] == "user:"
    assert user["REDIS_PASSWORD"] == redis["acl-user_service-password"]
    assert user["REDIS_URL"].startswith(f"redis://user_service:{redis['acl-user_service-password']}@")
    other = decoded(s[("default", "nova-auth-service")])
    assert "REDIS_USERNAME" not in other and other["REDIS_PASSWORD"] == redis["redis-password"]


def test_an_acl_user_from_an_existing_secret_is_read_by_its_own_key(helm_major: int) -> None:
    objs = render(CHART, set_values=[*ACL, "redis.auth.existingSecret=nova-redis-own"], major=helm_major)
    env = main_env(objs, "user-service")["env"]
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "nova-redis-own",
                                                                  "key": "acl-user_service-password"}
    assert env["REDIS_URL"]["value"].startswith("redis://$(REDIS_USERNAME):$(REDIS_PASSWORD)@")


def test_a_redis_user_that_is_no_acl_user_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"user-service\.redis\.user=cache is not a Redis ACL user: add "
                                             r"redis\.aclUsers\.cache\.keyPrefix"):
        render(CHART, set_values=["services.microservices.user-service.redis.user=cache"])


@pytest.mark.parametrize(("item", "message"), [
    ("kafka", r"secrets\.kafka\.brokers is empty but secrets\.kafka\.required=true: set secrets\.kafka\.brokers"),
    ("turn", r"secrets\.turn\.uris is empty but secrets\.turn\.required=true"),
])
def test_a_required_kafka_or_turn_placeholder_left_empty_fails_naming_the_key(item: str, message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(CHART, PRODUCTION, set_values=[f"secrets.{item}.required=true"])


def test_required_kafka_and_turn_render_once_filled(helm_major: int) -> None:
    objs = render(CHART, PRODUCTION, major=helm_major, set_values=[
        "secrets.kafka.required=true", "secrets.kafka.brokers={kafka-0.kafka:9092}",
        "secrets.turn.required=true", "secrets.turn.uris={turns:turn.example.com:5349}"])
    assert decoded(secrets(objs)[("nova-services", "nova-user-service")])["KAFKA_BROKERS"] == "kafka-0.kafka:9092"
    cm = next(o for o in objs if o.kind == "ConfigMap" and o.name == "nova-streaming-api-config")
    assert cm["data"]["TURN_URIS"] == "turns:turn.example.com:5349"


def test_production_install_warns_about_the_empty_kafka_and_turn_placeholders() -> None:
    from tests.conftest import helm_path

    helm.dependency_build(CHART, helm=helm_path(4))
    out = helm.run(["install", "nova", str(CHART), *(a for f in PRODUCTION for a in ("-f", str(f))), "--dry-run=client",
                    "--namespace", "nova-services"], helm=helm_path(4))
    notes = out.split("NOTES:", 1)[1]
    assert "WARNING: KAFKA_BROKERS is empty: set secrets.kafka.brokers" in notes
    assert "WARNING: TURN_URIS is empty for messaging-service, streaming-api: set secrets.turn.uris" in notes
