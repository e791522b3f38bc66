"""tools.schema: values.schema.json and README parameter tables from annotated values.yaml files.

Usage::

    python -m tools.schema                  # every chart under charts/: write values.schema.json + README table
    python -m tools.schema charts/nova      # only the charts named (their local dependencies are read too)
    python -m tools.schema --check          # write nothing; exit 1 with a unified diff when something is stale
    python -m tools.schema --unused         # also report values no template reads / reads values do not define

Exit codes: 0 clean, 1 stale (``--check``), 2 a problem in a chart's input (printed as ``file:line: what``).
The annotation syntax is documented in docs/values-annotations.md; the modules:

* ``yamlread``: YAML as Helm reads it (libyaml nodes with lines, scalars resolved like go-yaml);
* ``values``: values.yaml into keys with descriptions, hints and lines (``yamlread`` plus a line scan);
* ``build``: keys -> JSON Schema draft-07 (strict objects, ``k8s`` definitions, umbrella embedding);
* ``k8s``: the Kubernetes definitions bundled from kubernetes-validate (loaded only when used);
* ``readme``: the parameter table between ``<!-- nova:params:start -->`` and ``<!-- nova:params:end -->``;
* ``usage``: values keys versus the ``.Values`` paths the templates read;
* ``generate``: charts in dependency order;
* ``quickcheck``, ``jsontext``: fast paths (the defaults self-check, the schema text) that give the same
  answers as jsonschema and ``json.dumps``.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CHARTS_DIR = REPO_ROOT / "charts"


def main(argv: list[str] | None = None) -> int:
    from tools.schema.__main__ import main as _main

    return _main(argv)
