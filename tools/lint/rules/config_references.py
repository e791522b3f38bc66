"""ConfigMaps and Secrets that pods reference exist in the render, or are declared external.

References are env valueFrom (configMapKeyRef, secretKeyRef, keys included), envFrom, volumes
(configMap, secret, projected) and imagePullSecrets. ``optional: true`` references are skipped.
Objects created outside the chart are listed in the config file as ``name`` or ``namespace/name``
(shell-style wildcards allowed) under ``external-configmaps`` / ``external-secrets``. A Secret that a rendered
cert-manager ``Certificate`` of the same namespace writes (its spec's secretName) counts as rendered, with the
keys cert-manager puts in it (tls.crt, tls.key, ca.crt).

Passing::

    env: [{name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: api-config, key: LOG_LEVEL}}}]
    # and ConfigMap api-config with data.LOG_LEVEL in the same namespace

Failing::

    envFrom: [{secretRef: {name: api-credentials}}]   # no such Secret, not declared external
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Container, Index, Workload, decode_secret
from tools.lint.rules._base import Reporter, listing, mapping

ID = "config-references"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every ConfigMap and Secret a pod references (env, envFrom, volumes, imagePullSecrets) exists in "
               "the render with the referenced key, or is declared external in the config.")
REMEDIATION = ("Render the ConfigMap/Secret in the chart, fix the name or key, mark the reference optional, or "
               "declare it under rules.config-references.external-configmaps / external-secrets.")
OPTIONS: dict[str, Any] = {"external-configmaps": [], "external-secrets": []}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)

Ref = tuple[str, str, str | None, bool, str, str | None]  # kind, name, key, optional, path, container


def references(w: Workload) -> Iterator[Ref]:
    """Every ConfigMap/Secret reference of a workload's pods."""
    for c in w.containers:
        yield from _container_refs(c)
    for i, vol in enumerate(listing(w.pod_spec.get("volumes"))):
        vol = mapping(vol)
        path = f"{w.pod_path}.volumes[{i}]"
        if "configMap" in vol:
            cm = mapping(vol["configMap"])
            yield "ConfigMap", str(cm.get("name")), None, bool(cm.get("optional")), f"{path}.configMap", None
        if "secret" in vol:
            sec = mapping(vol["secret"])
            yield "Secret", str(sec.get("secretName")), None, bool(sec.get("optional")), f"{path}.secret", None
        for j, src in enumerate(listing(mapping(vol.get("projected")).get("sources"))):
            for field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if field in mapping(src):
                    ref = mapping(src[field])
                    yield (kind, str(ref.get("name")), None, bool(ref.get("optional")),
                           f"{path}.projected.sources[{j}].{field}", None)
    for i, pull in enumerate(listing(w.pod_spec.get("imagePullSecrets"))):
        yield "Secret", str(mapping(pull).get("name")), None, False, f"{w.pod_path}.imagePullSecrets[{i}]", None


def _container_refs(c: Container) -> Iterator[Ref]:
    for i, env in enumerate(listing(c.spec.get("env"))):
        source = mapping(mapping(env).get("valueFrom"))
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if field in source:
                ref = mapping(source[field])
                yield (kind, str(ref.get("name")), str(ref.get("key")), bool(ref.get("optional")),
                       f"{c.path}.env[{i}].valueFrom.{field}", c.name)
    for i, env_from in enumerate(listing(c.spec.get("envFrom"))):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in mapping(env_from):
                ref = mapping(env_from[field])
                yield (kind, str(ref.get("name")), None, bool(ref.get("optional")),
                       f"{c.path}.envFrom[{i}].{field}", c.name)


CERTIFICATE_KEYS = frozenset({"tls.crt", "tls.key", "ca.crt"})


def _certificate_secret(index: Index, namespace: str, name: str) -> bool:
    """A cert-manager Certificate of the render in ``namespace`` writes Secret ``name``."""
    return any(o.namespace == namespace and str(mapping(o.obj.get("spec")).get("secretName")) == name
               and str(o.obj.get("apiVersion", "")).startswith("cert-manager.io/")
               for o in index.by_kind.get("Certificate", []))


def _declared(patterns: list[str], namespace: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(f"{namespace}/{name}", p) for p in patterns)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    external = {"ConfigMap": list(options["external-configmaps"]), "Secret": list(options["external-secrets"])}
    for w in index.workloads:
        for kind, name, key, optional, path, container in references(w):
            if optional:
                continue
            found = index.get(kind, w.namespace, name)
            if found is None and kind == "Secret" and _certificate_secret(index, w.namespace, name):
                if key is not None and key not in CERTIFICATE_KEYS:
                    yield report(w.obj, path, f"{kind} {name!r} (written by a cert-manager Certificate) has no key "
                                              f"{key!r}", container)
                continue
            if found is None:
                if not _declared(external[kind], w.namespace, name):
                    yield report(w.obj, path, f"{kind} {name!r} is not in namespace {w.namespace} of the render "
                                              f"and not declared external", container)
                continue
            if key is not None:
                keys = set(decode_secret(found)) if kind == "Secret" else (
                    set(mapping(found.obj.get("data"))) | set(mapping(found.obj.get("binaryData"))))
                if key not in keys:
                    yield report(w.obj, path, f"{kind} {name!r} has no key {key!r}", container)
