"""tools.manifest: the one parser (libyaml, document lines, ``# Source:``, List kinds, file:line errors)
and the one object type that helm renders, manifest files and lint rules share."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import CHARTS, ROOT, render
from tools import helm, manifest
from tools.lint import inputs, model

TWO_DOCS = (
    "---\n# Source: demo/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
    "---\n# Source: demo/templates/list.yaml\napiVersion: v1\nkind: List\nitems:\n"
    "- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: other}\n"
    "- apiVersion: v1\n  kind: Secret\n  metadata: {name: t}\n"
)


def test_each_object_keeps_its_template_and_the_line_its_document_starts_on() -> None:
    objs = manifest.parse(TWO_DOCS, "in.yaml")
    assert [(o.ref, o.source, o.line) for o in objs] == [
        ("ConfigMap/a", "demo/templates/cm.yaml", 2),
        ("Service/other/s", "demo/templates/list.yaml", 8),
        ("Secret/t", "demo/templates/list.yaml", 8),
    ]


def test_objects_without_a_namespace_land_in_the_render_namespace() -> None:
    cm, svc, _ = manifest.parse(TWO_DOCS, "in.yaml", namespace="apps")
    assert (cm.namespace, cm.effective_namespace) == (None, "apps")
    assert (svc.namespace, svc.effective_namespace) == ("other", "other")


def test_a_source_comment_inside_a_value_is_not_taken_for_the_template() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: 'see # Source: no'\n"
    assert manifest.parse(text)[0].source is None


def test_invalid_yaml_is_one_line_naming_the_file_and_the_line_of_the_problem() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [unclosed\n"
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(text, "bad.yaml")
    message = str(err.value)
    assert message.startswith("bad.yaml:7: not valid YAML") and "\n" not in message


def test_a_document_that_is_not_a_mapping_is_refused_naming_file_line_and_template() -> None:
    with pytest.raises(manifest.ManifestError, match=r"^x.yaml:3: document is a list, not a Kubernetes object "
                                                     r"\(template t/a.yaml\)$"):
        manifest.parse("apiVersion: v1\n---\n# Source: t/a.yaml\n- 1\n- 2\n", "x.yaml")


def test_an_unreadable_file_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(manifest.ManifestError, match=r"missing.yaml: cannot read: No such file"):
        manifest.read(tmp_path / "missing.yaml")


def test_libyaml_parses_when_pyyaml_has_it() -> None:
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.fail("PyYAML without libyaml: reinstall PyYAML with libyaml (make setup)", pytrace=False)
    assert manifest._Loader is yaml.CSafeLoader


def test_helm_renders_lint_inputs_and_rules_share_one_object_type() -> None:
    rendered = render(CHARTS / "nova-redis", namespace="cache")
    assert rendered and all(type(o) is manifest.KubeObject for o in rendered)
    assert model.Obj is manifest.KubeObject
    assert inputs.InputError is manifest.ManifestError
    sts = next(o for o in rendered if o.kind == "StatefulSet")
    assert sts["spec"]["replicas"] == sts.get("spec")["replicas"] == 3
    assert sts.effective_namespace == "cache" and sts.source and sts.source.startswith("nova-redis/templates/")


def test_objects_are_equal_when_their_content_and_template_are() -> None:
    a, b = manifest.parse(TWO_DOCS), manifest.parse(TWO_DOCS)
    assert a == b and len({*a, *b}) == 3
    changed = manifest.parse(TWO_DOCS.replace("name: a", "name: b"))
    assert a[0] != changed[0]


def _typed(value: object) -> object:
    """A value with the type of every scalar spelled out: 1 == True and 1 == 1.0 in Python, not here."""
    if isinstance(value, dict):
        return ("map", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [_typed(v) for v in value])
    return (type(value).__name__, value)


TRICKY = [
    "a: 1\nb: '1'\nc: 0440\nd: 0x1F\ne: 1_000\nf: 1.5\ng: .inf\nh: -.5e3\ni: 190:20:30\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: 'true'\ng: ~\nh: null\ni:\nj: ''\n",
    "a: 2026-12-01\nb: 2026-12-01T12:00:00Z\n",  # timestamps: PyYAML's constructor
    "base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\nsame: *b\n",  # merge key and aliases
    "a: !!str 1\nb: !!int '2'\nc: !!float 3\nd: !!binary aGVsbG8=\ne: !!set {x, y}\n",
    "a: 1\na: 2\n",  # a duplicate key: the last wins, as in PyYAML
    "? [a, b]\n: unhashable\n",
    "a: |\n  #!/bin/sh\n  [ \"$x\" != 1 ] && echo !yes\nb: >-\n  folded\n  text\n",
    "- 1\n- [a, {b: c}]\n- {}\n- []\n",
    "plain string",
    "",
]


@pytest.mark.parametrize("doc", TRICKY, ids=range(len(TRICKY)))
def test_load_reads_every_document_exactly_as_yaml_safe_load_does(doc: str) -> None:
    try:
        expected = ("ok", _typed(yaml.safe_load(doc)))
    except yaml.YAMLError as exc:
        expected = ("error", type(exc).__name__)
    try:
        got = ("ok", _typed(manifest.load(doc)))
    except yaml.YAMLError as exc:
        got = ("error", type(exc).__name__)
    assert got == expected


def test_load_refuses_bad_yaml_like_yaml_safe_load() -> None:
    with pytest.raises(yaml.YAMLError):
        manifest.load("a: [1, 2\nb: 3\n")


@pytest.mark.parametrize("values", ["values/local.yaml", "charts/nova/ci/render/extras-values.yaml"])
def test_a_whole_umbrella_render_parses_to_what_yaml_safe_load_gives(values: str) -> None:
    text = helm.render_text(CHARTS / "nova", [ROOT / values])
    docs = [doc for _, doc in manifest._documents(text)]
    assert len(docs) > 50
    assert [_typed(manifest.load(d)) for d in docs] == [_typed(yaml.safe_load(d)) for d in docs]
