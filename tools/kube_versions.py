"""The Kubernetes versions this repository supports: the one place that pins them.

- :data:`MINIMUM`: the oldest version the charts support. Every chart's ``Chart.yaml`` says the same
  in ``kubeVersion: ">=1.29.0-0"`` (tests/unit/test_kube_versions.py checks they agree).
- :data:`SCHEMA`: the version whose API definitions ``tools.schema`` bundles into values.schema.json
  (``k8s`` annotations). Changing it changes every generated schema: run ``make schema``.
- :func:`newest`: the newest version kubernetes-validate (pinned in pyproject.toml) has schemas for.
- :func:`supported`: what tools.lint renders and validates for by default and what the render tests
  validate against: the oldest and the newest, each render checked against its own version's schema.

Usage::

    from tools import kube_versions
    for version in kube_versions.supported():   # ("1.29", "1.37")
        helm.render(chart, kube_version=kube_versions.full(version))
"""

from __future__ import annotations

import functools

MINIMUM = "1.29"
SCHEMA = "1.33"


@functools.cache
def newest() -> str:
    """``MAJOR.MINOR`` of the newest Kubernetes version kubernetes-validate ships schemas for."""
    from kubernetes_validate import utils  # imported late: tools.schema runs without it in most charts

    return utils.major_minor(utils.all_versions()[-1])


def supported() -> tuple[str, ...]:
    """The versions checked by default, oldest first: the chart minimum and the newest with schemas."""
    return tuple(dict.fromkeys((MINIMUM, newest())))


def full(version: str) -> str:
    """``1.29`` -> ``1.29.0`` (what ``helm template --kube-version`` and kubernetes-validate take)."""
    return version if version.count(".") >= 2 else f"{version}.0"


def chart_constraint() -> str:
    """The ``kubeVersion`` every Chart.yaml carries for :data:`MINIMUM`."""
    return f">={MINIMUM}.0-0"
