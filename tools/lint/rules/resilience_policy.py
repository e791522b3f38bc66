"""Every service has the resilience settings of the design: request timeout <= 3 s, connect
timeout <= 1 s, retries and a circuit breaker configured.

A service is a workload whose pod label ``service-label`` (app.kubernetes.io/component) is one of
``services`` (none by default: a repository lists its own in the config file), or any workload
whose containers set one of the four variables. Values are
resolved the way the kubelet does: literal env, env valueFrom configMapKeyRef / secretKeyRef,
and envFrom ConfigMaps / Secrets of the same render. Durations are Go-style (``3s``, ``500ms``,
``1m30s``); a bare number is read in ``bare-number-unit``.

Passing::

    envFrom: [{configMapRef: {name: nova-resilience}}]
    # ConfigMap nova-resilience: {HTTP_REQUEST_TIMEOUT: 3s, HTTP_CONNECT_TIMEOUT: 1s,
    #                             RETRY_ATTEMPTS: "3", CIRCUIT_BREAKER_FAILURE_RATE: "50"}

Failing::

    env: [{name: HTTP_REQUEST_TIMEOUT, value: 30s}]   # too long; connect timeout, retries, breaker missing
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter
from tools.lint.rules._env import EnvValue, resolve_env

ID = "resilience-policy"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every service container sets HTTP_REQUEST_TIMEOUT <= 3s, HTTP_CONNECT_TIMEOUT <= 1s, "
               "RETRY_ATTEMPTS (>= 1) and CIRCUIT_BREAKER_FAILURE_RATE (1-100 %), from env or ConfigMaps.")
REMEDIATION = ("Deliver the resilience settings to the container (envFrom the resilience ConfigMap) with "
               "timeouts within the limits in .nova-lint.yaml (rules.resilience-policy).")
OPTIONS: dict[str, Any] = {
    "service-label": "app.kubernetes.io/component",
    "services": [],
    "request-timeout-env": "HTTP_REQUEST_TIMEOUT",
    "connect-timeout-env": "HTTP_CONNECT_TIMEOUT",
    "retry-attempts-env": "RETRY_ATTEMPTS",
    "circuit-breaker-env": "CIRCUIT_BREAKER_FAILURE_RATE",
    "max-request-timeout": "3s",
    "max-connect-timeout": "1s",
    "min-retry-attempts": 1,
    "bare-number-unit": "s",
}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str, bare_unit: str = "s") -> float | None:
    """Seconds in a Go-style duration (``1m30s``, ``250ms``) or a bare number in ``bare_unit``; None if invalid."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text) * _UNITS[bare_unit]
    if not text or _PART.sub("", text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def _number(text: str) -> float | None:
    try:
        return float(text.strip().rstrip("%"))
    except ValueError:
        return None


def _missing(name: str, opaque: list[str]) -> str:
    hidden = f" (it may come from {', '.join(opaque)}, which is not in the render)" if opaque else ""
    return f"{name} is not set{hidden}"


def _problems(env: dict[str, EnvValue], opaque: list[str], o: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    unit = o["bare-number-unit"]
    for var, limit_key in ((o["request-timeout-env"], "max-request-timeout"),
                           (o["connect-timeout-env"], "max-connect-timeout")):
        limit = parse_duration(str(o[limit_key]), unit)
        if limit is None:
            yield "", f"setting {limit_key}={o[limit_key]!r} is not a duration such as 3s (fix the config file)"
            continue
        item = env.get(var)
        if item is None:
            yield "", _missing(var, opaque)
        elif item.value is None:
            yield item.path, f"{var} comes from {item.origin}, whose value is not in the render"
        else:
            seconds = parse_duration(item.value, unit)
            if seconds is None or seconds <= 0:
                yield item.path, f"{var}={item.value!r} (from {item.origin}) is not a positive duration"
            elif seconds > limit:
                yield item.path, f"{var}={item.value} (from {item.origin}) exceeds the limit of {o[limit_key]}"
    retries = env.get(o["retry-attempts-env"])
    if retries is None:
        yield "", _missing(o["retry-attempts-env"], opaque)
    elif retries.value is not None:
        count = _number(retries.value)
        if count is None or count != int(count) or count < o["min-retry-attempts"]:
            yield retries.path, (f"{o['retry-attempts-env']}={retries.value!r} (from {retries.origin}) is not a "
                                 f"whole number >= {o['min-retry-attempts']}")
    breaker = env.get(o["circuit-breaker-env"])
    if breaker is None:
        yield "", _missing(o["circuit-breaker-env"], opaque)
    elif breaker.value is not None:
        rate = _number(breaker.value)
        if rate is None or not 0 < rate <= 100:
            yield breaker.path, (f"{o['circuit-breaker-env']}={breaker.value!r} (from {breaker.origin}) is not a "
                                 f"failure rate between 1 and 100 %")


def validate_options(options: Mapping[str, Any]) -> None:
    """Called by the config loader: ValueError (shown as a config error) for settings that make no sense."""
    if options["bare-number-unit"] not in _UNITS:
        raise ValueError(f"bare-number-unit must be one of {', '.join(_UNITS)}")
    for key in ("max-request-timeout", "max-connect-timeout"):
        if parse_duration(str(options[key]), options["bare-number-unit"]) is None:
            raise ValueError(f"{key} {options[key]!r} is not a duration such as 3s or 500ms")


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    watched = {options[k] for k in ("request-timeout-env", "connect-timeout-env", "retry-attempts-env",
                                    "circuit-breaker-env")}
    services = set(options["services"])
    for w in index.workloads:
        main = [c for c in w.containers if not c.init]
        resolved = [(c, *resolve_env(index, w, c)) for c in main]
        is_service = str(w.pod_labels.get(options["service-label"], "")) in services or any(
            watched & env.keys() for _, env, _ in resolved)
        if not is_service:
            continue
        for c, env, opaque in resolved:
            for path, message in _problems(env, opaque, options):
                yield report(w.obj, path or f"{c.path}.env", f"container {c.name!r}: {message}", c.name)
