"""The Kubernetes resource quantity (``500m``, ``0.5``, ``1Gi``, ``1e3``) as a JSON schema, for values schemas.

kubernetes-validate's ``io.k8s.apimachinery.pkg.api.resource.Quantity`` accepts any string or number, so
``cpu: 500mm``, ``memory: 512MB``, ``-1`` or ``1.5.0`` passed ``helm install`` and failed at the API server.
The definition bundled into our schemas is :func:`definition` instead: the grammar of k8s.io/apimachinery's
``resource.ParseQuantity`` as a ``pattern`` for strings, and ``minimum: 0`` for numbers (YAML reads
``cpu: 2`` or ``cpu: 1e3`` as a number), without a sign: a resource amount is never negative. Both Helm 3
(gojsonschema) and Helm 4 (santhosh-tekuri/jsonschema) enforce ``pattern`` and ``minimum`` (tests/schema
render bad and good quantities through both).

QUANTITY_PATTERN must stay the same as ``tools/quantity.py``'s (the lint rules' parser of the same
grammar); the integrator makes one import the other.
"""

from __future__ import annotations

from typing import Any

NAME = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# The grammar (signed): the same text as tools/quantity.py's QUANTITY_PATTERN.
QUANTITY_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
_SIGNED = "^[+-]?"
assert QUANTITY_PATTERN.startswith(_SIGNED)
# What a values schema accepts: the same grammar without a minus sign.
NON_NEGATIVE_PATTERN = r"^\+?" + QUANTITY_PATTERN[len(_SIGNED):]
DESCRIPTION = ("A Kubernetes quantity, never negative: a number, or a string such as 500m, 0.5, 1Gi, 512Mi or "
               "1e3 (suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent e3).")


def definition() -> dict[str, Any]:
    """The Quantity definition bundled into values schemas in place of kubernetes-validate's."""
    return {
        "description": DESCRIPTION,
        "type": ["string", "number", "null"],
        "pattern": NON_NEGATIVE_PATTERN,
        "minimum": 0,
    }
