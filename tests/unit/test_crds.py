"""The vendored CRD schemas (tools/crds): pinned bytes, every kind served, strict like the built-in schemas."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tools import crds
from tools.lint.schema import KubeSchemas, schemas_for


def errors(obj: dict[str, Any], version: str = "1.31") -> list[tuple[str, str]]:
    validate = schemas_for(version).validator(obj["apiVersion"], obj["kind"])
    assert validate is not None, f"no schema for {obj['apiVersion']} {obj['kind']}"
    return validate(obj)


@pytest.mark.parametrize("pin", crds.sources(), ids=lambda p: p["file"])
def test_vendored_file_is_the_pinned_upstream_bytes(pin: dict[str, str]) -> None:
    data = (crds.VENDOR / pin["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == pin["sha256"], f"{pin['file']} differs from {pin['url']}"
    assert pin["url"] == f"https://raw.githubusercontent.com/{pin['repo']}/{pin['tag']}/{pin['path']}"
    assert len(pin["commit"]) == 40


def test_every_vendored_file_is_pinned_and_every_pin_is_vendored() -> None:
    on_disk = {p.name for p in crds.VENDOR.iterdir()}
    assert on_disk == {pin["file"] for pin in crds.sources()}


@pytest.mark.parametrize("pin", crds.sources(), ids=lambda p: p["file"])
def test_every_pinned_version_has_a_strict_schema(pin: dict[str, Any]) -> None:
    defs = KubeSchemas("1.31")._definitions["$defs"]
    for version in pin["versions"]:
        schema = crds.strict_schema(f"{pin['group']}/{version}", pin["kind"], defs)
        assert schema is not None and schema["additionalProperties"] is False


VALID: list[dict[str, Any]] = [
    {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "etcd"},
     "spec": {"selector": {"matchLabels": {"app": "etcd"}}, "podMetricsEndpoints": [{"port": "client"}]}},
    {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "pg"},
     "spec": {"secretName": "pg-tls", "dnsNames": ["pg"], "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}}},
    {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser", "metadata": {"name": "u"},
     "spec": {"authentication": {"type": "scram-sha-512"}}},
]


@pytest.mark.parametrize("obj", VALID, ids=lambda o: o["kind"])
def test_a_correct_custom_resource_validates(obj: dict[str, Any]) -> None:
    assert errors(obj) == []


def test_unknown_fields_are_errors_at_every_depth_and_in_metadata() -> None:
    obj = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "pg", "labls": {}},
           "spec": {"secretName": "s", "issuerRef": {"name": "ca", "kynd": "Issuer"}, "dnsName": ["pg"]}}
    found = {(path, msg.split("(")[-1]) for path, msg in errors(obj)}
    assert ("metadata", "'labls' was unexpected)") in found
    assert ("spec.issuerRef", "'kynd' was unexpected)") in found
    assert ("spec", "'dnsName' was unexpected)") in found


def test_wrong_api_version_or_kind_spelling_is_not_accepted() -> None:
    assert schemas_for("1.31").validator("cert-manager.io/v1alpha2", "Certificate") is None
    obj = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"},
           "spec": {"secretName": "s", "issuerRef": {"name": "ca"}}}
    assert errors(obj) == []
    assert errors({**obj, "spek": {}}) != []


def test_preserve_unknown_fields_stays_open() -> None:
    # Strimzi's KafkaTopic spec.config is free-form (x-kubernetes-preserve-unknown-fields): any topic setting.
    obj = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic", "metadata": {"name": "t"},
           "spec": {"partitions": 3, "config": {"retention.ms": 604800000, "cleanup.policy": "delete"}}}
    assert errors(obj) == []


def test_openapi_nullable_and_boolean_exclusive_bounds_become_json_schema() -> None:
    node = crds._strict({"type": "object", "properties": {
        "a": {"type": "string", "nullable": True},
        "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}}})
    assert node["additionalProperties"] is False
    assert node["properties"]["a"]["type"] == ["string", "null"]
    assert node["properties"]["n"] == {"type": "integer", "exclusiveMinimum": 0}
