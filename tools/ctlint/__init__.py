"""What chart-testing's ``ct lint`` runs, with the same ``ct.yaml``, where ct itself is not installed.

For every chart changed against the merge base with the target branch (or every chart with ``--all``):

1. the local dependencies (through :func:`tools.helm.dependency_build`): nothing to build for one held as a
   symlink ``charts/<name>``, ``helm dependency build`` for others; a stray package helm could load is a finding;
2. the Chart.yaml version must be greater (semver) than at the merge base when the chart changed;
3. Chart.yaml validated against ``chart-yaml-schema`` with yamale;
4. yamllint with ``lint-conf`` on Chart.yaml, values.yaml and every ``ci/*-values.yaml``;
5. the ``additional-commands``;
6. ``helm lint`` with every ``ci/*-values.yaml`` (or once without values when there are none).

Usage: ``python -m tools.ctlint [--config ct.yaml] [--all | --charts charts/a,charts/b]``.
Exit codes: 0 clean, 1 findings, 2 usage or configuration error.
"""

from tools.ctlint.cli import main

__all__ = ["main"]
