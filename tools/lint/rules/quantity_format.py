"""Every resource quantity is one the API server accepts: Kubernetes quantity syntax, not negative.

Checked wherever an object carries resource amounts: container and init container
``resources.requests`` / ``limits`` (every resource: cpu, memory, ephemeral-storage, hugepages,
extended resources), pod-level ``resources``, emptyDir ``sizeLimit``, the storage of
PersistentVolumeClaims, StatefulSet ``volumeClaimTemplates`` and generic ephemeral volumes,
PersistentVolume ``capacity``, ResourceQuota ``hard`` and LimitRange limits. The grammar is the one
of k8s.io/apimachinery's resource.Quantity (``tools/quantity.py``): a signed decimal number and an
optional suffix, ``n u m k M G T P E`` (powers of 1000), ``Ki Mi Gi Ti Pi Ei`` (powers of 1024) or
an exponent ``e3``. Suffixes are case-sensitive. The strict schemas type quantities as
int-or-string, so ``kube-schema`` lets these through and the API server refuses the object.

Passing::

    resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: "1", memory: 1.5Gi}}

Failing::

    resources: {requests: {cpu: 500mm, memory: 512MB}, limits: {cpu: "-1", memory: 1.5.0}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index, Obj
from tools.lint.rules._base import Reporter, listing, mapping
from tools.quantity import parse_quantity

ID = "quantity-format"
SEVERITY = Severity.ERROR
DESCRIPTION = ("Every resource quantity (requests, limits, storage, emptyDir sizeLimit, quotas) is a valid, "
               "non-negative Kubernetes quantity such as 500m, 1.5Gi or 1e3.")
REMEDIATION = ("Write the amount as a Kubernetes quantity: a number with an optional case-sensitive suffix "
               "(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei), e.g. cpu: 500m, memory: 512Mi.")
OPTIONS: dict[str, Any] = {}
EQUIVALENTS = {
    "kube-linter": "—",
    "Polaris": "—",
    "kube-score": "—",
    "checkov": "—",
}
report = Reporter(ID, SEVERITY, REMEDIATION)

RESOURCE_SECTIONS = ("requests", "limits")
LIMIT_RANGE_SECTIONS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def problem(value: Any) -> str | None:
    """Why the API server refuses ``value`` as a resource amount, or None when it accepts it."""
    if value is None:
        return None
    try:
        amount = parse_quantity(value)
    except ValueError as exc:
        return str(exc)
    return f"{value!r} is negative" if amount < 0 else None


def _amounts(parent: Any, path: str, sections: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(JSON path, value) of every amount in ``parent``'s sections (``requests``, ``limits``...)."""
    for section in sections:
        for key, value in mapping(mapping(parent).get(section)).items():
            yield f"{path}.{section}.{key}", value


def _pod_amounts(pod: Mapping[str, Any], pod_path: str) -> Iterator[tuple[str, Any]]:
    yield from _amounts(pod.get("resources"), f"{pod_path}.resources", RESOURCE_SECTIONS)
    for i, volume in enumerate(listing(pod.get("volumes"))):
        volume = mapping(volume)
        base = f"{pod_path}.volumes[{i}]"
        empty_dir = mapping(volume.get("emptyDir"))
        if "sizeLimit" in empty_dir:
            yield f"{base}.emptyDir.sizeLimit", empty_dir["sizeLimit"]
        claim = mapping(mapping(mapping(volume.get("ephemeral")).get("volumeClaimTemplate")).get("spec"))
        yield from _amounts(claim.get("resources"), f"{base}.ephemeral.volumeClaimTemplate.spec.resources",
                            RESOURCE_SECTIONS)


def _object_amounts(o: Obj) -> Iterator[tuple[str, Any]]:
    """Amounts outside containers: PVCs, claim templates, PVs, quotas and limit ranges."""
    spec = mapping(o.obj.get("spec"))
    if o.kind == "PersistentVolumeClaim":
        yield from _amounts(spec.get("resources"), "spec.resources", RESOURCE_SECTIONS)
    elif o.kind == "StatefulSet":
        for i, claim in enumerate(listing(spec.get("volumeClaimTemplates"))):
            yield from _amounts(mapping(mapping(claim).get("spec")).get("resources"),
                                f"spec.volumeClaimTemplates[{i}].spec.resources", RESOURCE_SECTIONS)
    elif o.kind == "PersistentVolume":
        yield from _amounts(spec, "spec", ("capacity",))
    elif o.kind == "ResourceQuota":
        yield from _amounts(spec, "spec", ("hard",))
    elif o.kind == "LimitRange":
        for i, item in enumerate(listing(spec.get("limits"))):
            yield from _amounts(item, f"spec.limits[{i}]", LIMIT_RANGE_SECTIONS)


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    for w in index.workloads:
        for c in w.containers:
            for path, value in _amounts(c.spec.get("resources"), f"{c.path}.resources", RESOURCE_SECTIONS):
                reason = problem(value)
                if reason:
                    yield report(w.obj, path, f"container {c.name!r}: {path.rsplit('.resources.', 1)[1]}: {reason}",
                                 c.name)
        for path, value in _pod_amounts(w.pod_spec, w.pod_path):
            reason = problem(value)
            if reason:
                yield report(w.obj, path, f"{path}: {reason}")
    for o in index.objects:
        for path, value in _object_amounts(o):
            reason = problem(value)
            if reason:
                yield report(o, path, f"{path}: {reason}")
