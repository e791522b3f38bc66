"""Every dependency address a container is configured with is allowed by its pod's egress NetworkPolicies.

The contract is the container's environment, as the kubelet builds it (envFrom, then env, with the values of
the ConfigMaps and Secrets in the render): a variable whose name matches ``address-env`` (``*_URL``,
``*_ADDRS``, ``*_BROKERS``, ``WAIT_FOR``...) holds addresses, as ``host:port`` or URLs (``scheme://host:port``,
the scheme's usual port when none is given), separated by commas or spaces; a ``<P>HOST`` variable with a
``<P>PORT`` sibling (``DATABASE_HOST``/``DATABASE_PORT``, ``PGHOST``/``PGPORT``) is one more address. Loopback
addresses and values with ``$(...)`` expansions are skipped; ``ignore-env`` names variables to skip.

Each address is resolved the way the cluster would: ``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc[.<domain>]`` and
``<pod>.<svc>.<ns>.svc...`` name a Service of the render, whose selector and ``port`` -> ``targetPort`` give
the destination pods and container port (number and name). The pod's egress is then decided like Kubernetes
does: no NetworkPolicy with Egress selects the pod, all is allowed; else the union of the egress rules of
the policies that select it must admit the destination (``to`` peers by podSelector, namespaceSelector
with the namespace's labels, ipBlock) on that port (number, name, or ``endPort`` range). An address that
names no Service of the render (an external host, a cluster the chart does not render) is allowed by a rule
without ``to``, or one whose peers could hold it (an ipBlock for an external host or containing an IP; a
namespaceSelector matching the namespace of a ``.svc`` name), on that port number.

Passing::

    env: [{name: KAFKA_BROKERS, value: "kafka.kafka.svc.cluster.local:9092"}]
    # and an egress rule of a policy selecting the pod: {to: [{namespaceSelector: ...kafka}], ports: [{port: 9092}]}

Failing::

    env: [{name: REDIS_URL, value: "redis://redis.data.svc.cluster.local:6379"}]
    # egress of the pod allows only DNS (a default-deny with Egress): the pod can never reach Redis
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tools.lint.finding import Finding, Severity
from tools.lint.model import Container, Index, Workload, map_selector_matches, selector_matches
from tools.lint.rules._base import Reporter, listing, mapping
from tools.lint.rules._env import EnvValue, resolve_env

ID = "dependency-egress"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every dependency address in a container's environment (URLs, host:port lists, HOST/PORT pairs) is "
               "allowed by the egress NetworkPolicies that select its pod.")
REMEDIATION = ("Add an egress rule to a NetworkPolicy selecting the pod that admits the destination (pod/namespace "
               "selectors of the Service's pods, or an ipBlock for an external host) on that port, or fix the "
               "address; list variables that hold no address under rules.dependency-egress.ignore-env.")
OPTIONS: dict[str, Any] = {
    "address-env": ["*_URL", "*_URLS", "*_ADDR", "*_ADDRS", "*_ADDRESS", "*_ADDRESSES", "*_BROKERS",
                    "*_BOOTSTRAP_SERVERS", "WAIT_FOR"],
    "ignore-env": [],
    "cluster-domain": "cluster.local",
}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "— (`pod-networkpolicy` checks only that a policy exists)",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)

SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
                "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "mongodb": 27017, "nats": 4222,
                "mysql": 3306, "grpc": 443}
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):([0-9]{1,5})$")
_LOOPBACK = {"localhost", "0.0.0.0"}


@dataclass(frozen=True, slots=True)
class Dest:
    """A resolved destination: pods (namespace, labels) with the container port's number and name, or an
    unresolved one (``pods`` empty): an IP, an external host, or a namespace known from a ``.svc`` name."""

    port: int
    pods: tuple[tuple[str, Mapping[str, Any], int, str | None], ...] = ()  # namespace, labels, port number, name
    ip: str | None = None
    namespace: str | None = None  # of an unrendered in-cluster name
    what: str = ""


def addresses(value: str) -> Iterator[tuple[str, int]]:
    """(host, port) of every address in a value: URLs and host:port tokens separated by commas or spaces."""
    if "$(" in value:
        return
    for token in re.split(r"[,\s]+", value.strip()):
        if not token:
            continue
        if "://" in token:
            try:
                parts = urlsplit(token)
                host, port = parts.hostname, parts.port or SCHEME_PORTS.get(parts.scheme.lower())
            except ValueError:
                continue
            if host and port:
                yield host, port
            continue
        m = _HOST_PORT.match(token)
        if m and 0 < int(m.group(3)) < 65536:
            yield m.group(1).strip("[]"), int(m.group(3))


def configured(env: Mapping[str, EnvValue], options: Mapping[str, Any]) -> Iterator[tuple[str, EnvValue, str, int]]:
    """(variable, where it comes from, host, port) of every dependency address of a container."""
    patterns, ignored = options["address-env"], options["ignore-env"]

    def skip(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in ignored)

    for name, ev in env.items():
        if ev.value is None or skip(name):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            for host, port in addresses(ev.value):
                yield name, ev, host, port
        elif name.endswith("HOST") and (port_ev := env.get(name[: -len("HOST")] + "PORT")) is not None:
            port_value = (port_ev.value or "").strip()
            host = ev.value.strip()
            if port_value.isdigit() and _HOST_PORT.match(f"{host}:{port_value}") and not skip(name[:-4] + "PORT"):
                yield name, ev, host, int(port_value)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_ref(host: str, own_ns: str, domain: str) -> tuple[str, str, bool] | None:
    """(service, namespace, certainly in-cluster) of a cluster DNS name, None for other names."""
    name = host.rstrip(".").lower()
    for suffix in (f".svc.{domain}", ".svc"):
        if name.endswith(suffix):
            parts = name[: -len(suffix)].split(".")
            if len(parts) in (2, 3):  # <svc>.<ns> or <pod>.<svc>.<ns>
                return parts[-2], parts[-1], True
            return None
    parts = name.split(".")
    if len(parts) == 1:
        return parts[0], own_ns, True
    if len(parts) == 2:
        return parts[0], parts[1], False
    return None


def _container_port(w: Workload, target: Any) -> tuple[int, str | None] | None:
    for c in w.containers:
        for p in listing(c.spec.get("ports")):
            p = mapping(p)
            if target in (p.get("name"), p.get("containerPort")) and isinstance(p.get("containerPort"), int):
                return int(p["containerPort"]), p.get("name")
    return None


def resolve(index: Index, w: Workload, host: str, port: int, domain: str) -> Dest | str:
    """The destination of an address, or a message when the address names a Service that cannot serve it."""
    try:
        return Dest(port, ip=str(ipaddress.ip_address(host)), what=host)
    except ValueError:
        pass
    ref = _service_ref(host, w.namespace, domain)
    if ref is None:
        return Dest(port, what=host)
    name, ns, in_cluster = ref
    svc = index.get("Service", ns, name)
    if svc is None:
        return Dest(port, namespace=ns if in_cluster else None, what=host)
    spec = mapping(svc.obj.get("spec"))
    selector = mapping(spec.get("selector"))
    if not selector:  # ExternalName or hand-made Endpoints: the pods are not known
        return Dest(port, namespace=ns, what=host)
    sp = next((mapping(p) for p in listing(spec.get("ports")) if mapping(p).get("port") == port), None)
    if sp is None:
        return f"Service {ns}/{name} has no port {port}"
    target = sp.get("targetPort", port)
    pods: list[tuple[str, Mapping[str, Any], int, str | None]] = []
    for other in index.workloads_in(ns):
        if map_selector_matches(selector, other.pod_labels):
            resolved = _container_port(other, target)
            if resolved is None:
                return f"Service {ns}/{name} port {port} targets {target}, which {other.kind} {other.obj.name} does not listen on"
            pods.append((ns, other.pod_labels, *resolved))
    if not pods:
        return Dest(port, namespace=ns, what=host)
    return Dest(port, pods=tuple(pods), what=f"{host} (Service {ns}/{name})")


def _namespace_labels(index: Index, ns: str) -> dict[str, Any]:
    found = index.get("Namespace", "", ns) or next((o for o in index.kind("Namespace") if o.name == ns), None)
    labels = dict(found.labels) if found is not None else {}
    labels["kubernetes.io/metadata.name"] = ns
    return labels


def _egress_policies(index: Index, w: Workload) -> list[Mapping[str, Any]]:
    out = []
    for pol in index.kind_in("NetworkPolicy", w.namespace):
        spec = mapping(pol.obj.get("spec"))
        types = listing(spec.get("policyTypes")) or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if "Egress" in types and selector_matches(spec.get("podSelector", {}), w.pod_labels):
            out.append(spec)
    return out


def _port_matches(rule: Mapping[str, Any], number: int, name: str | None, numeric_only: bool) -> bool:
    ports = listing(rule.get("ports"))
    if not ports:
        return True
    for p in map(mapping, ports):
        if str(p.get("protocol", "TCP")) != "TCP":
            continue
        value = p.get("port")
        if value is None:
            return True
        if isinstance(value, int):
            end = p.get("endPort")
            if value == number or (isinstance(end, int) and value <= number <= end):
                return True
        elif not numeric_only and name is not None and str(value) == name:
            return True
    return False


def _peer_admits_pod(index: Index, peer: Mapping[str, Any], policy_ns: str, ns: str,
                     labels: Mapping[str, Any]) -> bool:
    if "ipBlock" in peer:
        return False  # pod IPs are not known statically; a policy for pods selects them by labels
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        ns_ok = ns == policy_ns
    else:
        ns_ok = selector_matches(ns_sel, _namespace_labels(index, ns))
    pod_sel = peer.get("podSelector")
    return ns_ok and (pod_sel is None or selector_matches(pod_sel, labels))


def _peer_may_hold(index: Index, peer: Mapping[str, Any], policy_ns: str, dest: Dest) -> bool:
    """A peer that could hold an unresolved destination."""
    block = mapping(peer.get("ipBlock"))
    if block:
        if dest.ip is None:
            return dest.namespace is None  # an external name: an ipBlock may hold its addresses
        try:
            ip = ipaddress.ip_address(dest.ip)
            return ip in ipaddress.ip_network(str(block.get("cidr")), strict=False) and not any(
                ip in ipaddress.ip_network(str(e), strict=False) for e in listing(block.get("except")))
        except ValueError:
            return False
    if dest.namespace is None:
        return False
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        return dest.namespace == policy_ns
    return selector_matches(ns_sel, _namespace_labels(index, dest.namespace))


def allowed(index: Index, w: Workload, dest: Dest) -> bool:
    policies = _egress_policies(index, w)
    if not policies:
        return True
    targets = dest.pods or ((None, None, dest.port, None),)
    for ns, labels, number, port_name in targets:
        ok = False
        for spec in policies:
            for rule in map(mapping, listing(spec.get("egress"))):
                if not _port_matches(rule, number, port_name, numeric_only=not dest.pods):
                    continue
                peers = [mapping(p) for p in listing(rule.get("to"))]
                if not peers or any(
                        _peer_admits_pod(index, p, w.namespace, ns, labels or {}) if ns is not None
                        else _peer_may_hold(index, p, w.namespace, dest) for p in peers):
                    ok = True
                    break
            if ok:
                break
        if not ok:
            return False
    return True


def _check_container(index: Index, w: Workload, c: Container, options: Mapping[str, Any]) -> Iterator[Finding]:
    env, _ = resolve_env(index, w, c)
    seen: set[tuple[str, str, int]] = set()
    for name, ev, host, port in configured(env, options):
        if _is_loopback(host) or (name, host, port) in seen:
            continue
        seen.add((name, host, port))
        dest = resolve(index, w, host, port, str(options["cluster-domain"]))
        origin = "" if ev.origin == "env" else f" (from {ev.origin})"
        if isinstance(dest, str):
            yield report(w.obj, ev.path, f"{name}{origin} names {host}:{port}, but {dest}", c.name)
        elif not allowed(index, w, dest):
            yield report(w.obj, ev.path,
                         f"{name}{origin} names {dest.what or host}:{port}, which no egress rule of the "
                         f"NetworkPolicies selecting these pods allows", c.name)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w in index.workloads:
        for c in w.containers:
            yield from _check_container(index, w, c, options)
