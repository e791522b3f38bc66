"""The Kubernetes resource quantity (``500m``, ``0.5``, ``1Gi``, ``1e3``) as a JSON schema, for values schemas.

kubernetes-validate's ``io.k8s.apimachinery.pkg.api.resource.Quantity`` accepts any string or number, so
``cpu: 500mm``, ``memory: 512MB``, ``-1`` or ``1.5.0`` passed ``helm install`` and failed at the API server.
The definition bundled into our schemas is :func:`definition` instead: the grammar of k8s.io/apimachinery's
``resource.ParseQuantity`` as a ``pattern`` for strings, and ``minimum: 0`` for numbers (YAML reads
``cpu: 2`` or ``cpu: 1e3`` as a number), without a sign: a resource amount is never negative. Both Helm 3
(gojsonschema) and Helm 4 (santhosh-tekuri/jsonschema) enforce ``pattern`` and ``minimum`` (tests/schema
render bad and good quantities through both).

The grammar itself lives once, in ``tools/quantity.py`` (the lint rules' parser of the same grammar).
"""

from __future__ import annotations

from typing import Any

from tools.quantity import NON_NEGATIVE_QUANTITY_PATTERN

NAME = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# What a values schema accepts: the grammar without a minus sign.
NON_NEGATIVE_PATTERN = NON_NEGATIVE_QUANTITY_PATTERN
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
