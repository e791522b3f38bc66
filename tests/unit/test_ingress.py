"""Traffic in (issue 14.1): per-service Service type and policies, Ingress with TLS (existing Secret or
cert-manager's issuer annotation), Gateway API HTTPRoute, the NetworkPolicy admission of the controller's pods,
and strict schema validation of the new objects (built-in Ingress, vendored Gateway API CRDs)."""

from __future__ import annotations

import copy
import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, ROOT, render
from tools import charts as chart_files
from tools import helm
from tools.lint.schema import schemas_for
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
HTTPROUTE = CHART / "ci" / "render" / "httproute-values.yaml"
EXPOSED = {"user-service": "users.example.com", "auth-service": "auth.example.com",
           "streaming-api": "stream.example.com"}
KUBE_VERSIONS = ("1.29", "1.37")
GUIDE = ROOT / "docs" / "deployment-guide.md"


def by_kind(objs: list[KubeObject], kind: str) -> dict[str, KubeObject]:
    return {o.name: o for o in objs if o.kind == kind}


def schema_errors(obj: dict[str, Any], version: str = "1.37") -> list[tuple[str, str]]:
    validate = schemas_for(version).validator(obj["apiVersion"], obj["kind"])
    assert validate is not None, f"no schema for {obj['apiVersion']} {obj['kind']}"
    return list(validate(obj))


def render_error(values: dict[str, Any], tmp_path: Path, kube_version: str | None = None) -> str:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    with pytest.raises(helm.HelmError) as err:
        render(CHART, [file], kube_version=kube_version)
    return str(err.value)


def service(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"services": {"microservices": {name: settings}}}


# ------------------------------------------------------------------------------------------- Ingress


def test_production_exposes_user_auth_and_streaming_through_ingress_nginx_with_cert_manager_tls() -> None:
    objs = render(CHART, PRODUCTION, namespace="nova-services")
    ingresses = by_kind(objs, "Ingress")
    assert set(ingresses) == {f"nova-{s}" for s in EXPOSED}
    services = by_kind(objs, "Service")
    for name, host in EXPOSED.items():
        ing = ingresses[f"nova-{name}"]
        assert ing.namespace == "nova-services"
        spec = ing["spec"]
        assert spec["ingressClassName"] == "nginx"
        assert spec["tls"] == [{"secretName": f"nova-{name}-tls", "hosts": [host]}]
        assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
        [rule] = spec["rules"]
        assert rule["host"] == host
        [path] = rule["http"]["paths"]
        assert path["path"] == "/" and path["pathType"] == "Prefix"
        backend = path["backend"]["service"]
        svc = services[backend["name"]]
        assert backend["port"] == {"name": "http"}
        assert "http" in {p["name"] for p in svc["spec"]["ports"]}
        assert svc["spec"]["type"] == "ClusterIP"


def test_streaming_api_gets_long_lived_connection_timeouts_and_the_others_do_not() -> None:
    ingresses = by_kind(render(CHART, PRODUCTION, namespace="nova-services"), "Ingress")
    timeouts = {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600"}
    assert timeouts.items() <= ingresses["nova-streaming-api"]["metadata"]["annotations"].items()
    for other in ("nova-user-service", "nova-auth-service"):
        assert not set(timeouts) & set(ingresses[other]["metadata"]["annotations"]), other


def test_ingress_tls_from_an_existing_secret_has_no_issuer_annotation(tmp_path: Path) -> None:
    file = tmp_path / "v.yaml"
    file.write_text(yaml.safe_dump(service("search-service", {"ingress": {
        "enabled": True, "className": "", "hosts": [{"host": "search.example.com",
                                                     "paths": [{"path": "/api", "pathType": "Exact"}]}],
        "tls": {"enabled": True, "secretName": "search-tls"}}})))
    ing = by_kind(render(CHART, [file]), "Ingress")["nova-search-service"]
    assert "annotations" not in ing["metadata"] and "ingressClassName" not in ing["spec"]
    assert ing["spec"]["tls"] == [{"secretName": "search-tls", "hosts": ["search.example.com"]}]
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/api"
    assert not schema_errors(ing.obj)


def test_a_namespaced_issuer_gets_cert_managers_issuer_annotation_and_no_certificate_is_rendered(
        tmp_path: Path) -> None:
    """cert-manager's ingress-shim (https://cert-manager.io/docs/usage/ingress/) reads cert-manager.io/issuer for an
    Issuer in the Ingress's namespace and cert-manager.io/cluster-issuer for a ClusterIssuer, and creates the
    Certificate itself, into the Ingress's tls.secretName."""
    file = tmp_path / "v.yaml"
    file.write_text(yaml.safe_dump(service("search-service", {"ingress": {
        "enabled": True, "hosts": [{"host": "search.example.com"}], "annotations": {"a.example.com/x": "1"},
        "tls": {"enabled": True, "certManager": {"issuer": "team-ca", "kind": "Issuer"}}}})))
    objs = render(CHART, [file])
    ing = by_kind(objs, "Ingress")["nova-search-service"]
    assert ing["metadata"]["annotations"] == {"a.example.com/x": "1", "cert-manager.io/issuer": "team-ca"}
    assert ing["spec"]["tls"] == [{"secretName": "nova-search-service-tls", "hosts": ["search.example.com"]}]
    assert not [o for o in objs if o.kind == "Certificate"]
    assert not schema_errors(ing.obj)


@pytest.mark.parametrize(("settings", "message"), [
    ({"ingress": {"enabled": True}}, "ingress.hosts is empty"),
    ({"ingress": {"enabled": True, "hosts": [{"host": "a.example.com"}], "tls": {"enabled": True}}},
     "ingress.tls.enabled=true needs ingress.tls.secretName"),
    ({"ingress": {"enabled": True, "hosts": [{"host": "a.example.com", "paths": [{"pathType": "Prefix"}]}]}},
     "ingress.hosts: every path needs a `path` starting with /"),
    ({"httpRoute": {"enabled": True}}, "httpRoute.parentRefs is empty"),
    ({"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}], "rules": [{}], "matches": [{}]}},
     "give either rules or matches/timeouts"),
    ({"service": {"externalTrafficPolicy": "Local"}},
     "service.externalTrafficPolicy=Local applies only to service.type NodePort or LoadBalancer"),
])
def test_inconsistent_traffic_settings_fail_naming_the_key(settings: dict[str, Any], message: str,
                                                           tmp_path: Path) -> None:
    err = render_error(service("user-service", settings), tmp_path)
    assert "services.microservices.user-service." in err and message in err


def test_a_typo_in_an_ingress_key_is_refused_by_the_values_schema(tmp_path: Path) -> None:
    err = render_error(service("user-service", {"ingress": {"enabled": True, "hosts": [{"hots": "x"}]}}), tmp_path)
    assert "hots" in err


# ------------------------------------------------------------------------------------------- Service


def test_traffic_distribution_needs_kubernetes_1_31(tmp_path: Path) -> None:
    values = service("user-service", {"service": {"trafficDistribution": "PreferClose"}})
    err = render_error(values, tmp_path, kube_version="1.30.0")
    assert "services.microservices.user-service.service.trafficDistribution=PreferClose needs Kubernetes >= 1.31" in err
    file = tmp_path / "ok.yaml"
    file.write_text(yaml.safe_dump(values))
    svc = by_kind(render(CHART, [file], kube_version="1.31.0"), "Service")["nova-user-service"]
    assert svc["spec"]["trafficDistribution"] == "PreferClose"
    same_node = service("user-service", {"service": {"trafficDistribution": "PreferSameNode"}})
    assert "needs Kubernetes >= 1.34" in render_error(same_node, tmp_path, kube_version="1.33.0")


def test_load_balancer_service_keeps_client_addresses_and_its_annotations() -> None:
    objs = render(CHART, [HTTPROUTE], namespace="nova-services")
    svc = by_kind(objs, "Service")["nova-search-service"]
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
    for version in KUBE_VERSIONS:
        assert not schema_errors(svc.obj, version)


# ------------------------------------------------------------------------------------------- HTTPRoute


def test_httproutes_attach_to_the_gateway_and_forward_to_the_http_port() -> None:
    objs = render(CHART, [HTTPROUTE], namespace="nova-services")
    routes = by_kind(objs, "HTTPRoute")
    assert set(routes) == {"nova-user-service", "nova-streaming-api"}
    user = routes["nova-user-service"]["spec"]
    assert user["parentRefs"] == [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
    assert user["hostnames"] == ["users.example.com"]
    assert user["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/api/users"}}],
                              "backendRefs": [{"name": "nova-user-service", "port": 8080}],
                              "timeouts": {"request": "10s"}}]
    # streaming-api: the chart's default for long-lived connections, no request deadline.
    [rule] = routes["nova-streaming-api"]["spec"]["rules"]
    assert rule["timeouts"] == {"request": "0s"}
    assert rule["backendRefs"] == [{"name": "nova-streaming-api", "port": 8081}]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert not by_kind(objs, "Ingress")


def test_full_rules_replace_the_generated_rule_and_default_their_backend(tmp_path: Path) -> None:
    file = tmp_path / "v.yaml"
    file.write_text(yaml.safe_dump(service("auth-service", {"httpRoute": {
        "enabled": True, "parentRefs": [{"name": "gw"}],
        "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}]},
                  {"backendRefs": [{"name": "legacy-auth", "port": 80}]}]}})))
    route = by_kind(render(CHART, [file]), "HTTPRoute")["nova-auth-service"]
    rules = route["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "nova-auth-service", "port": 8084}]
    assert rules[1]["backendRefs"] == [{"name": "legacy-auth", "port": 80}]
    assert not schema_errors(route.obj)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_rendered_ingress_and_httproute_validates_strictly(version: str) -> None:
    objs = [o for values in (PRODUCTION, [HTTPROUTE]) for o in render(CHART, values, namespace="nova-services")
            if o.kind in {"Ingress", "HTTPRoute", "Service", "NetworkPolicy"}]
    assert {o.kind for o in objs} == {"Ingress", "HTTPRoute", "Service", "NetworkPolicy"}
    bad = {o.ref: errs for o in objs if (errs := schema_errors(o.obj, version))}
    assert not bad


@pytest.mark.parametrize(("kind", "path", "value", "expected"), [
    ("HTTPRoute", ("spec", "rules", 0, "timeouts", "requests"), "10s", "requests"),
    ("HTTPRoute", ("spec", "rules", 0, "timeouts", "request"), "10 seconds", "does not match"),
    ("HTTPRoute", ("spec", "parentRefs", 0, "sectionname"), "https", "sectionname"),
    ("HTTPRoute", ("spec", "rules", 0, "backendRefs", 0, "port"), "8080", "integer"),
    ("Ingress", ("spec", "rules", 0, "http", "paths", 0, "pathtype"), "Prefix", "pathtype"),
    ("Ingress", ("spec", "tls", 0, "secret"), "x", "secret"),
])
def test_a_wrong_field_in_a_rendered_route_or_ingress_fails_strict_validation(
        kind: str, path: tuple[str | int, ...], value: Any, expected: str) -> None:
    source = PRODUCTION if kind == "Ingress" else [HTTPROUTE]
    obj = copy.deepcopy(next(o for o in render(CHART, source, namespace="nova-services") if o.kind == kind).obj)
    node: Any = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(obj)
    assert errors and any(expected in f"{p} {m}" for p, m in errors), errors


def test_cert_manager_certificate_and_gateway_schemas_are_strict_too() -> None:
    """The vendored cert-manager and Gateway CRDs (for the objects the docs show) refuse unknown fields."""
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "users", "namespace": "nova-services"},
            "spec": {"secretName": "nova-user-service-tls", "dnsNames": ["users.example.com"],
                     "issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer"}}}
    assert not schema_errors(cert)
    cert["spec"]["issuerRef"]["kinds"] = "ClusterIssuer"
    assert schema_errors(cert)
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "public", "namespace": "gateway-system"},
               "spec": {"gatewayClassName": "eg", "listeners": [{
                   "name": "https", "protocol": "HTTPS", "port": 443, "hostname": "*.example.com",
                   "tls": {"mode": "Terminate", "certificateRefs": [{"name": "wildcard-tls"}]},
                   "allowedRoutes": {"namespaces": {"from": "All"}}}]}}
    assert not schema_errors(gateway)
    gateway["spec"]["listeners"][0]["tls"]["certificateRef"] = {"name": "x"}
    assert schema_errors(gateway)


def test_a_wrong_match_in_values_is_caught_by_the_lint_schema_rule(tmp_path: Path) -> None:
    """httpRoute.matches is typed loosely in values (HTTPRouteMatch lives in the CRD): tools.lint's kube-schema
    rule is where a typo in it fails."""
    from tools.lint.config import parse_config
    from tools.lint.engine import lint

    file = tmp_path / "v.yaml"
    file.write_text(yaml.safe_dump(service("user-service", {"httpRoute": {
        "enabled": True, "parentRefs": [{"name": "gw"}], "matches": [{"path": {"type": "PathPrefix", "valu": "/"}}]}})))
    objs = [o for o in render(CHART, [file]) if o.kind == "HTTPRoute"]
    findings = lint(objs, parse_config({}, "test"), ["1.37"])
    assert [(f.rule, f.kind) for f in findings if "valu" in f.message or "valu" in f.path] == [("kube-schema", "HTTPRoute")]


# ------------------------------------------------------------------------------------------- the guide's examples


def guide_examples() -> list[Any]:
    """The YAML blocks of docs/deployment-guide.md's "Exposing services": controller selectors, a service's
    httpRoute values, the platform's Gateway."""
    section = GUIDE.read_text().split("\n## Exposing services\n", 1)[1].split("\n## ", 1)[0]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)]


def test_the_guides_controller_selectors_and_gateway_tls_example_render_and_attach(tmp_path: Path) -> None:
    selectors, values, gateway = guide_examples()
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    assert selectors["networkPolicy"]["ingressController"] == chart_defaults["ingressController"]
    gateway_peer = selectors["networkPolicy"]["gatewayController"]
    default_peer = chart_defaults["gatewayController"]
    assert gateway_peer["namespaceSelector"] == default_peer["namespaceSelector"]
    assert default_peer["podSelector"].items() < gateway_peer["podSelector"].items()  # the example narrows
    files = []
    for i, block in enumerate((selectors, values)):
        files.append(tmp_path / f"{i}.yaml")
        files[-1].write_text(yaml.safe_dump(block))
    objs = render(CHART, files, namespace="nova-services")  # helm checks both against values.schema.json
    route = by_kind(objs, "HTTPRoute")["nova-user-service"]
    assert not schema_errors(route.obj) and not schema_errors(gateway)
    assert "tls" not in route["spec"]  # HTTPRoute has no TLS: the listener terminates it
    [parent] = route["spec"]["parentRefs"]
    assert (parent["namespace"], parent["name"]) == (gateway["metadata"]["namespace"], gateway["metadata"]["name"])
    listener = next(x for x in gateway["spec"]["listeners"] if x["name"] == parent["sectionName"])
    assert listener["protocol"] == "HTTPS" and listener["tls"]["mode"] == "Terminate"
    assert listener["tls"]["certificateRefs"]
    assert all(fnmatch.fnmatchcase(host, listener["hostname"]) for host in route["spec"]["hostnames"])
    allowed = listener["allowedRoutes"]["namespaces"]
    assert allowed["selector"]["matchLabels"] == {"kubernetes.io/metadata.name": route.namespace}
    # The service's NetworkPolicy admits exactly the narrowed Gateway peer on the http port.
    policy = by_kind(objs, "NetworkPolicy")["nova-user-service"]
    peer = {"namespaceSelector": {"matchLabels": gateway_peer["namespaceSelector"]},
            "podSelector": {"matchLabels": gateway_peer["podSelector"]}}
    assert {"from": [peer], "ports": [{"port": "http", "protocol": "TCP"}]} in policy["spec"]["ingress"]
