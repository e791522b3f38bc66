"""tools.schema on the fixture charts: inferred types, annotations, Kubernetes types, umbrella, README, --check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import helm_path
from tests.schema.conftest import load_schema
from tools import helm
from tools.schema import REPO_ROOT, readme


def test_types_are_inferred_and_the_charts_own_objects_are_closed(charts, run):
    assert run(charts / "basic").code == 0
    schema = load_schema(charts / "basic")
    jsonschema.Draft7Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert props["replicas"] == {"type": "integer", "minimum": 1, "maximum": 9, "default": 3,
                                 "description": "Number of pods (one leader, the rest followers)."}
    assert props["metrics"]["type"] == "boolean"
    assert props["sampleRatio"]["type"] == "number"
    assert props["image"]["type"] == "object" and props["image"]["additionalProperties"] is False
    assert set(props["image"]["properties"]) == {"repository", "tag", "pullPolicy"}
    assert props["ports"]["items"] == {"type": "integer"}
    assert props["enabled"]["type"] == "boolean"


def test_annotations_set_enum_bounds_pattern_nullable_required_items(charts, run):
    assert run(charts / "basic").code == 0
    props = load_schema(charts / "basic")["properties"]
    assert props["logLevel"]["enum"] == ["debug", "verbose", "notice", "warning"]
    assert props["image"]["properties"]["repository"]["pattern"] == "^[a-z0-9./-]+$"
    assert props["auth"]["properties"]["existingSecret"]["type"] == ["string", "null"]
    assert props["auth"]["required"] == ["port"]
    assert props["auth"]["properties"]["port"]["maximum"] == 65535
    assert props["extraArgs"]["items"] == {"type": "string"}
    assert props["podAnnotations"]["additionalProperties"] is True
    assert props["extraLabels"]["additionalProperties"] == {"type": "string"}
    assert props["nodeSelector"]["type"] == ["object", "null"]
    # the continuation line is part of the description
    assert props["auth"]["properties"]["existingSecret"]["description"].endswith("so it may hold a template.")


def test_kubernetes_definitions_are_bundled_with_everything_they_reference(charts, run):
    assert run(charts / "basic").code == 0
    schema = load_schema(charts / "basic")
    props, defs = schema["properties"], schema["definitions"]
    assert props["resources"]["allOf"] == [{"$ref": "#/definitions/io.k8s.api.core.v1.ResourceRequirements"}]
    assert props["tolerations"]["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Toleration"}
    # transitively: ResourceRequirements -> ResourceClaim, Quantity
    assert {"io.k8s.api.core.v1.ResourceRequirements", "io.k8s.api.core.v1.ResourceClaim",
            "io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.api.core.v1.Toleration"} <= set(defs)
    text = json.dumps(schema)
    assert "#/$defs/" not in text and "x-kubernetes-" not in text
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/definitions/')[1:]}
    assert refs <= set(defs), f"dangling refs: {refs - set(defs)}"
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})) == []
    bad = list(validator.iter_errors({"resources": {"limts": {"cpu": "1"}}}))
    assert bad and "limts" in bad[0].message or any("limts" in str(e) for e in bad)


def test_output_is_deterministic_sorted_and_ends_with_a_newline(charts, run):
    assert run(charts / "basic").code == 0
    first = (charts / "basic" / "values.schema.json").read_bytes()
    (charts / "basic" / "values.schema.json").unlink()
    assert run(charts / "basic").code == 0
    second = (charts / "basic" / "values.schema.json").read_bytes()
    assert first == second and first.endswith(b"}\n")
    assert first.decode() == json.dumps(json.loads(first), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_readme_table_is_replaced_between_markers_and_the_rest_is_kept(charts, run):
    assert run(charts / "basic").code == 0
    text = (charts / "basic" / "README.md").read_text()
    assert text.startswith("# basic\n\nHand-written introduction that the generator keeps.")
    assert text.rstrip().endswith("## Footer kept too")
    assert "stale table" not in text
    table = text[text.index(readme.START):text.index(readme.END)]
    assert "| `replicas` | integer | `3` | Number of pods (one leader, the rest followers). |" in table
    assert '| `logLevel` | string (`"debug"`, `"verbose"`, `"notice"`, `"warning"`) | `"notice"` |' in table
    assert "[ResourceRequirements](" in table
    assert "| `auth.existingSecret` | string \\| null |" in table


def test_readme_without_markers_gets_them_at_the_end_and_a_missing_readme_is_created(charts, run):
    (charts / "cache" / "README.md").write_text("# cache\n\nOur words.\n")
    assert run(charts / "cache", charts / "umbrella").code == 0
    cache = (charts / "cache" / "README.md").read_text()
    assert cache.startswith("# cache\n\nOur words.\n\n## Parameters\n\n" + readme.START)
    assert cache.endswith(readme.END + "\n")
    created = (charts / "umbrella" / "README.md").read_text()
    assert created.startswith("# umbrella\n\nA fixture umbrella chart.\n\n## Parameters\n")


def test_broken_readme_markers_are_an_error_naming_the_file(charts, run):
    (charts / "cache" / "README.md").write_text(f"# cache\n{readme.END}\n{readme.START}\n")
    result = run(charts / "cache")
    assert result.code == 2
    assert "README.md:2: README markers are broken" in result.err


def test_check_exits_1_with_a_unified_diff_when_stale_and_0_when_fresh(charts, run):
    assert run(charts / "basic").code == 0
    assert run(charts / "basic", "--check").code == 0
    values = charts / "basic" / "values.yaml"
    values.write_text(values.read_text().replace("# -- Log level of the server.", "# -- Log level."))
    result = run(charts / "basic", "--check")
    assert result.code == 1
    assert f"--- a/{charts / 'basic' / 'values.schema.json'}" in result.out or "values.schema.json" in result.out
    assert '-      "description": "Log level of the server.",' in result.out
    assert '+      "description": "Log level.",' in result.out
    assert "+| `logLevel`" in result.out
    assert "is stale" in result.err
    # --check wrote nothing
    assert "Log level of the server." in (charts / "basic" / "values.schema.json").read_text()


def test_check_reports_a_missing_schema_as_stale(charts, run):
    result = run(charts / "cache", "--check")
    assert result.code == 1 and "--- /dev/null" in result.out


def test_umbrella_embeds_each_dependency_schema_under_its_alias_or_name(charts, run):
    assert run(charts / "umbrella").code == 0
    schema = load_schema(charts / "umbrella")
    jsonschema.Draft7Validator.check_schema(schema)
    kv, basic = schema["properties"]["kv"], schema["properties"]["basic"]
    assert kv["additionalProperties"] is False
    assert kv["properties"]["auth"]["properties"]["secretKey"]["type"] == "string"
    assert kv["description"] == "The key-value store (the cache subchart, under the alias kv)."
    assert basic["properties"]["resources"]["allOf"][0]["$ref"] in {
        "#/definitions/" + d for d in schema["definitions"]}
    assert schema["properties"]["global"]["additionalProperties"] is False  # the umbrella defines the globals
    validator = jsonschema.Draft7Validator(schema)
    errors = list(validator.iter_errors({"kv": {"auth": {"secretKye": "x"}}}))
    assert [list(e.absolute_path) for e in errors] == [["kv", "auth"]]


def test_subcharts_accept_global_keys_from_a_parent_and_enabled_is_a_normal_key(charts, run):
    assert run(charts / "cache", charts / "basic").code == 0
    cache, basic = load_schema(charts / "cache"), load_schema(charts / "basic")
    assert cache["properties"]["global"]["additionalProperties"] is True
    assert cache["properties"]["global"]["properties"]["imageRegistry"]["type"] == "string"
    assert basic["properties"]["global"] == {"type": "object", "description": basic["properties"]["global"][
        "description"]}
    assert cache["properties"]["enabled"]["description"] == "Read by the parent's dependency condition."
    validator = jsonschema.Draft7Validator(cache)
    assert list(validator.iter_errors({"global": {"imageRegistry": "r", "fromParent": 1}, "enabled": False})) == []
    assert list(validator.iter_errors({"global": {"imageRegistry": 5}}))


@pytest.mark.helm3
def test_helm_refuses_typos_and_wrong_types_in_the_umbrella_and_names_the_path(charts, run, helm_major, tmp_path):
    binary = helm_path(helm_major)  # a missing helm is an error, as in every other helm test
    assert run(charts / "umbrella").code == 0
    assert run(charts / "cache", charts / "basic").code == 0
    helm.render(charts / "umbrella", helm=binary)  # the defaults pass
    bad = tmp_path / "bad.yaml"
    bad.write_text("kv:\n  auth:\n    secretKye: x\n  replicas: three\nservices:\n  api:\n    replica: 2\n"
                   "basic:\n  metrics: \"yes-please\"\n")
    with pytest.raises(helm.HelmError) as err:
        helm.render(charts / "umbrella", [bad], helm=binary)
    message = str(err.value)
    assert "at '/kv/auth': additional properties 'secretKye' not allowed" in message
    assert "at '/kv/replicas': got string, want integer" in message
    assert "at '/services/api': additional properties 'replica' not allowed" in message
    assert "at '/basic/metrics': got string, want boolean" in message


def test_loading_kubernetes_definitions_is_lazy(charts, run):
    code = (
        "import sys; from tools.schema.__main__ import main; "
        f"rc = main([{str(charts / 'cache')!r}]); "
        "print(rc, 'tools.schema.k8s' in sys.modules, 'kubernetes_validate' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"]


def test_default_is_every_chart_under_charts(monkeypatch, charts, run, tmp_path: Path):
    import tools.schema.__main__ as cli

    monkeypatch.setattr(cli, "CHARTS_DIR", charts)
    result = run()
    assert result.code == 0
    assert sorted(p.parent.name for p in charts.glob("*/values.schema.json")) == ["basic", "cache", "umbrella"]


def test_keys_merged_from_an_anchor_keep_the_description_of_their_source(tmp_path, run):
    from tests.schema.conftest import make_chart

    chart = make_chart(tmp_path, "anchors", "# -- Defaults.\ndefaults: &d\n  # -- Port.\n  port: 1\n"
                                            "# -- Service.\nsvc:\n  <<: *d\n  # -- Name.\n  name: x\n")
    assert run(chart).code == 0
    svc = load_schema(chart)["properties"]["svc"]
    assert svc["properties"]["port"] == {"type": "integer", "default": 1, "description": "Port."}
    assert svc["additionalProperties"] is False


def test_like_gives_every_entry_of_a_map_the_schema_of_a_defaults_block(tmp_path, run):
    from tests.schema.conftest import make_chart

    chart = make_chart(tmp_path, "svc", (
        "# -- Defaults of every service.\n"
        "defaults:\n"
        "  # -- Replicas.\n"
        "  # @schema {minimum: 1}\n"
        "  replicas: 2\n"
        "  # -- Port.\n"
        "  port: 8080\n"
        "# -- The services; each entry overrides defaults.\n"
        "# @schema {additionalProperties: {like: defaults}}\n"
        "services:\n"
        "  # -- The api service.\n"
        "  api:\n"
        "    # -- Its port.\n"
        "    port: 9000\n"
    ))
    assert run(chart).code == 0
    schema = load_schema(chart)
    entry = schema["properties"]["services"]["additionalProperties"]
    assert entry["additionalProperties"] is False and "required" not in entry
    assert "default" not in entry["properties"]["replicas"]
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors({"services": {"web": {"replicas": 3}}}))
    errors = [e.message for e in validator.iter_errors({"services": {"web": {"replcas": 3}}})]
    assert errors and "replcas" in errors[0]
    assert list(validator.iter_errors({"services": {"web": {"replicas": 0}}}))


def test_like_naming_a_missing_key_is_an_error_with_the_line(tmp_path, run):
    from tests.schema.conftest import make_chart

    chart = make_chart(tmp_path, "svc", (
        "# -- The services.\n"
        "# @schema {additionalProperties: {like: nothere}}\n"
        "services: {}\n"
    ))
    result = run(chart)
    assert result.code == 2
    assert "values.yaml:2" in result.err and "`like: nothere` names no key" in result.err
