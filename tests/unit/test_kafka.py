"""Kafka wiring (issue 15.3): brokers as host:port or a Strimzi cluster reference, egress to exactly those brokers,
SASL/TLS credentials from Secrets, per-service names, exactly-once client settings (validated, overridable),
optional Strimzi KafkaTopic/KafkaUser objects. The chart installs no broker."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, render
from tests.unit.test_nova_namespaces import egress_ports, service_pods
from tools import helm
from tools.lint.config import parse_config
from tools.lint.engine import lint
from tools.lint.schema import schemas_for
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
STRIMZI = CHART / "ci" / "render" / "kafka-strimzi-values.yaml"
EXTERNAL = CHART / "ci" / "render" / "kafka-external-values.yaml"
SPLIT = CHART / "ci" / "split-namespaces-values.yaml"
NS = "nova-services"
EXACTLY_ONCE = {"KAFKA_ENABLE_IDEMPOTENCE": "true", "KAFKA_ACKS": "all", "KAFKA_ISOLATION_LEVEL": "read_committed",
                "KAFKA_ENABLE_AUTO_COMMIT": "false", "KAFKA_RETRIES": "2147483647", "KAFKA_RETRY_BACKOFF_MS": "100",
                "KAFKA_RETRY_BACKOFF_MAX_MS": "1000", "KAFKA_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION": "5"}


def config(objs: list[KubeObject], service: str) -> dict[str, str]:
    return next(o for o in objs if o.kind == "ConfigMap" and o.name == f"nova-{service}-config")["data"]


def container(objs: list[KubeObject], service: str) -> dict[str, Any]:
    dep = next(o for o in objs if o.kind == "Deployment" and o.name == f"nova-{service}")
    return dep["spec"]["template"]["spec"]["containers"][0]


def env(objs: list[KubeObject], service: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objs, service).get("env", [])}


def kafka_rules(objs: list[KubeObject], service: str) -> list[dict[str, Any]]:
    pol = next(o for o in objs if o.kind == "NetworkPolicy" and o.name == f"nova-{service}")
    return [r for r in pol["spec"]["egress"] if any(p.get("port") in (9092, 9093, 9094) for p in r.get("ports", []))]


def render_values(values: dict[str, Any], tmp_path: Path, base: Path | None = None) -> list[KubeObject]:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    return render(CHART, [*([base] if base else []), file], namespace=NS)


def render_error(values: dict[str, Any], tmp_path: Path, base: Path | None = STRIMZI) -> str:
    with pytest.raises(helm.HelmError) as err:
        render_values(values, tmp_path, base)
    return str(err.value)


def dependency_findings(objs: list[KubeObject]) -> list[str]:
    findings = lint(objs, parse_config({"rules": {}}, "test"), ["1.37"])
    return [f"{f.kind}/{f.name} {f.message}" for f in findings if f.rule == "dependency-egress"]


# ------------------------------------------------------------------------------------------- Strimzi


@pytest.fixture(scope="module")
def strimzi() -> list[KubeObject]:
    return render(CHART, [STRIMZI], namespace=NS)


def test_a_strimzi_cluster_reference_becomes_its_bootstrap_address_and_broker_pod_egress(
        strimzi: list[KubeObject]) -> None:
    for svc in ("messaging-service", "streaming-api"):
        assert env(strimzi, svc)["KAFKA_BROKERS"] == "nova-kafka-bootstrap.nova-kafka.svc.cluster.local:9093"
        assert kafka_rules(strimzi, svc) == [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nova-kafka"}},
                    "podSelector": {"matchLabels": {"strimzi.io/cluster": "nova", "strimzi.io/kind": "Kafka"}}}],
            "ports": [{"port": 9093, "protocol": "TCP"}]}]
    broker = ("nova-kafka", {"strimzi.io/cluster": "nova", "strimzi.io/kind": "Kafka", "strimzi.io/name": "nova-kafka"})
    pods = service_pods(strimzi)
    for name, pod in pods.items():
        assert egress_ports(strimzi, pod, broker) == ({9093} if name in {"messaging-service", "streaming-api"}
                                                      else set()), name
        if name not in {"messaging-service", "streaming-api"}:
            assert not {k for k in config(strimzi, name) if k.startswith("KAFKA_")}, name
            assert "KAFKA_BROKERS" not in env(strimzi, name)
    # Another Strimzi cluster's brokers in the same namespace are not reachable.
    assert not egress_ports(strimzi, pods["messaging-service"], ("nova-kafka", {"strimzi.io/cluster": "other",
                                                                                "strimzi.io/kind": "Kafka"}))


def test_each_service_gets_its_names_and_the_exactly_once_settings(strimzi: list[KubeObject]) -> None:
    data = config(strimzi, "messaging-service")
    assert EXACTLY_ONCE.items() <= data.items()
    assert data["KAFKA_TOPICS"] == "messaging.events,messaging.push"
    assert data["KAFKA_CONSUMER_GROUP"] == "nova-messaging-service"
    assert data["KAFKA_DLQ_TOPIC"] == "nova-messaging-service.dlq"
    assert data["KAFKA_DLQ_AFTER_ATTEMPTS"] == "5"
    assert data["KAFKA_TRANSACTIONAL_ID_PREFIX"] == "nova-messaging-service-"
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["KAFKA_SASL_USERNAME"] == "nova-messaging-service-kafka"
    assert data["KAFKA_SSL_CA_LOCATION"] == "/etc/nova/kafka/ca.crt"
    # The per-service override wins over kafka.client, the rest is inherited.
    streaming = config(strimzi, "streaming-api")
    assert streaming["KAFKA_DLQ_AFTER_ATTEMPTS"] == "3" and EXACTLY_ONCE.items() <= streaming.items()


def test_sasl_password_and_the_ca_come_from_secrets(strimzi: list[KubeObject]) -> None:
    c = container(strimzi, "messaging-service")
    assert env(strimzi, "messaging-service")["KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "nova-messaging-service-kafka", "key": "password"}}
    assert {"name": "kafka-ca", "mountPath": "/etc/nova/kafka", "readOnly": True} in c["volumeMounts"]
    dep = next(o for o in strimzi if o.kind == "Deployment" and o.name == "nova-messaging-service")
    vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-ca")
    assert vol["secret"]["secretName"] == "nova-cluster-ca-cert"
    assert vol["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_strimzi_topics_and_users_cover_exactly_the_services_topics_and_validate_strictly(
        strimzi: list[KubeObject]) -> None:
    topics = {o["spec"]["topicName"]: o for o in strimzi if o.kind == "KafkaTopic"}
    assert set(topics) == {"messaging.events", "messaging.push", "nova-messaging-service.dlq",
                           "streaming.sessions", "nova-streaming-api.dlq"}
    users = {o.name: o for o in strimzi if o.kind == "KafkaUser"}
    assert set(users) == {"nova-messaging-service-kafka", "nova-streaming-api-kafka"}
    for o in [*topics.values(), *users.values()]:
        assert o.namespace == "nova-kafka" and o["metadata"]["labels"]["strimzi.io/cluster"] == "nova"
        for version in ("1.29", "1.37"):
            validate = schemas_for(version).validator(o.api_version, o.kind)
            assert validate is not None and not list(validate(o.obj)), o.ref
    acls = users["nova-streaming-api-kafka"]["spec"]["authorization"]["acls"]
    assert {(a["resource"]["type"], a["resource"].get("name")) for a in acls} == {
        ("topic", "streaming.sessions"), ("topic", "nova-streaming-api.dlq"), ("group", "nova-streaming-api"),
        ("transactionalId", "nova-streaming-api-"), ("cluster", None)}
    # A wrong field fails the vendored CRD schema.
    bad = copy.deepcopy(next(iter(topics.values())).obj)
    bad["spec"]["partition"] = 3
    assert list(schemas_for("1.37").validator(bad["apiVersion"], "KafkaTopic")(bad))  # type: ignore[misc]


# ------------------------------------------------------------------------------------------- brokers


def test_in_cluster_brokers_get_egress_on_9092_and_the_lint_rule_agrees() -> None:
    objs = render(CHART, [SPLIT], namespace=NS)
    assert env(objs, "messaging-service")["KAFKA_BROKERS"] == (
        "kafka-0.kafka.nova-kafka.svc.cluster.local:9092,kafka-1.kafka.nova-kafka.svc.cluster.local:9092")
    broker = ("nova-kafka", {"app.kubernetes.io/name": "kafka"})
    pods = service_pods(objs)
    assert egress_ports(objs, pods["messaging-service"], broker) == {9092}
    assert all(not egress_ports(objs, pod, broker) for name, pod in pods.items() if name != "messaging-service")
    assert not dependency_findings(objs)


def test_the_lint_rule_finds_brokers_the_egress_policy_does_not_allow(tmp_path: Path) -> None:
    """Before this change the brokers of split-namespaces were unreachable: egress pointed elsewhere is found."""
    objs = render_values({"kafka": {"networkPolicy": {"to": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}}]}}}, tmp_path, SPLIT)
    found = dependency_findings(objs)
    assert found == [f"Deployment/nova-messaging-service KAFKA_BROKERS names kafka-{i}.kafka.nova-kafka.svc.cluster."
                     f"local:9092, which no egress rule of the NetworkPolicies selecting these pods allows"
                     for i in (0, 1)]


def test_external_brokers_are_reached_through_their_cidr_with_sasl_from_one_secret() -> None:
    objs = render(CHART, [EXTERNAL], namespace=NS)
    assert env(objs, "messaging-service")["KAFKA_BROKERS"] == (
        "b-1.kafka.example.internal:9094,b-2.kafka.example.internal:9094,b-3.kafka.example.internal:9094")
    assert kafka_rules(objs, "messaging-service") == [
        {"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}], "ports": [{"port": 9094, "protocol": "TCP"}]}]
    assert env(objs, "messaging-service")["KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "nova-kafka-credentials", "key": "nova-messaging-service-kafka-password"}}
    assert config(objs, "messaging-service")["KAFKA_DLQ_TOPIC"] == "messaging.events.dlq"
    assert not [o for o in objs if o.kind in {"KafkaTopic", "KafkaUser"}]
    assert not dependency_findings(objs)


def test_client_settings_are_overridable_per_service(tmp_path: Path) -> None:
    objs = render_values({"services": {"microservices": {"messaging-service": {"kafka": {"client": {
        "enableIdempotence": False, "transactional": False, "acks": "1", "isolationLevel": "read_uncommitted",
        "enableAutoCommit": True}}}}}}, tmp_path, STRIMZI)
    data = config(objs, "messaging-service")
    assert (data["KAFKA_ACKS"], data["KAFKA_ENABLE_IDEMPOTENCE"], data["KAFKA_ENABLE_AUTO_COMMIT"]) == ("1", "false", "true")
    assert "KAFKA_TRANSACTIONAL_ID_PREFIX" not in data
    assert config(objs, "streaming-api")["KAFKA_ACKS"] == "all"


def test_no_service_uses_kafka_by_default_and_no_broker_is_installed() -> None:
    objs = render(CHART, namespace=NS)
    assert not [o for o in objs if "kafka" in o.name.lower() and o.kind not in {"ConfigMap", "Secret"}]
    assert not [k for o in objs if o.kind == "ConfigMap" and o.name.endswith("-config")
                for k in o["data"] if k.startswith("KAFKA_")]


# ------------------------------------------------------------------------------------------- validation

MESSAGING = ("services", "microservices", "messaging-service", "kafka")


def nest(keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


@pytest.mark.parametrize(("values", "message"), [
    (nest(MESSAGING, {"client": {"acks": "1"}}), "enableIdempotence=true requires acks=all (got acks=1)"),
    (nest(MESSAGING, {"client": {"maxInFlightRequestsPerConnection": 6}}), "at most 5 in-flight requests"),
    (nest(MESSAGING, {"client": {"retries": 0}}), "enableIdempotence=true requires retries > 0"),
    (nest(MESSAGING, {"client": {"enableAutoCommit": True}}), "so enableAutoCommit must be false"),
    (nest(MESSAGING, {"client": {"isolationLevel": "read_uncommitted"}}),
     "transactional=true requires isolationLevel=read_committed"),
    (nest(MESSAGING, {"client": {"enableIdempotence": False, "acks": "1"}}),
     "transactional=true (exactly-once) requires enableIdempotence=true"),
    (nest(MESSAGING, {"client": {"retryBackoffMaxMs": 10}}), "retryBackoffMaxMs=10 is below retryBackoffMs=100"),
    (nest(MESSAGING, {"topics": []}), "services.microservices.messaging-service.kafka.topics is empty"),
    (nest(MESSAGING, {"deadLetterTopic": "messaging.push"}), "must be a topic of its own"),
    ({"kafka": {"brokers": ["k.example.com:9092"]}}, "kafka.brokers and kafka.strimzi.cluster are both set"),
    ({"kafka": {"strimzi": {"cluster": ""}}}, "set kafka.brokers (host:port list) or kafka.strimzi.cluster"),
    ({"kafka": {"strimzi": {"cluster": ""}, "brokers": ["k.example.com:9092"]}},
     "kafka.networkPolicy.to is empty, so the services' egress policy would block the brokers"),
    ({"secrets": {"kafka": {"brokers": ["k.example.com:9092"]}}},
     "cannot be combined with secrets.kafka.brokers/existingSecret"),
    ({"kafka": {"tls": {"caSecret": ""}}}, "kafka.tls.enabled=true needs kafka.tls.caSecret"),
])
def test_inconsistent_kafka_settings_fail_with_a_message_naming_the_key(values: dict[str, Any], message: str,
                                                                        tmp_path: Path) -> None:
    assert message in render_error(values, tmp_path)


@pytest.mark.parametrize(("values", "word"), [
    ({"kafka": {"brokers": ["kafka-0"]}}, "brokers"),
    ({"kafka": {"client": {"acks": "everyone"}}}, "acks"),
    (nest(MESSAGING, {"client": {"idempotence": True}}), "idempotence"),
    (nest(MESSAGING, {"topics": ["bad topic"]}), "topics"),
    ({"kafka": {"sasl": {"mechanism": "PLAIN"}}}, "mechanism"),
])
def test_the_values_schema_refuses_malformed_kafka_values(values: dict[str, Any], word: str,
                                                          tmp_path: Path) -> None:
    err = render_error(values, tmp_path)
    assert "values don't meet the specifications of the schema" in err and word in err
