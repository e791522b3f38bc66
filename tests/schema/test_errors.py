"""Bad input: exit 2 with `file:line: what is wrong`, every problem listed, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.schema.conftest import make_chart
from tools.schema import REPO_ROOT

CASES = {
    "missing_description": (
        "# -- Documented.\na: 1\nb: 2\n",
        [":3: b has no description: add a `# --` comment line above it"]),
    "missing_description_of_a_nested_key": (
        "# -- Parent.\nparent:\n  # -- Child.\n  ok: 1\n  bad: true\n",
        [":5: parent.bad has no description"]),
    "description_separated_by_a_blank_line": (
        "# -- Lost.\n\n# -- Kept.\na: 1\n",
        [":1: description is not directly above a key"]),
    "schema_annotation_separated_by_a_blank_line": (
        "# -- A.\na: 1\n# @schema {minimum: 1}\n\n# -- B.\nb: 2\n",
        [":3: @schema annotation is not directly above a key"]),
    "malformed_annotation": (
        "# -- Replicas.\n# @schema {minimum: 1\nreplicas: 3\n",
        [":2: malformed @schema annotation of replicas:", "flow mapping"]),
    "annotation_that_is_not_a_mapping": (
        "# -- Replicas.\n# @schema minimum 1\nreplicas: 3\n",
        [":2: malformed @schema annotation of replicas: expected a YAML flow mapping"]),
    "unknown_annotation_key_suggests_the_right_one": (
        "# -- Replicas.\n# @schema {minimun: 1}\nreplicas: 3\n",
        [":2: replicas: unknown @schema key `minimun` (did you mean `minimum`?)"]),
    "required_names_a_key_that_does_not_exist": (
        "# -- Auth.\n# @schema {required: [password]}\nauth:\n  # -- On.\n  enabled: true\n",
        [":2: auth: `required` names 'password', which is not a key of auth"]),
    "unknown_kubernetes_definition": (
        "# -- Resources.\n# @schema {k8s: io.k8s.api.core.v1.ResourceRequirement}\nresources: {}\n",
        [":2: resources: unknown Kubernetes definition 'io.k8s.api.core.v1.ResourceRequirement'",
         "did you mean io.k8s.api.core.v1.ResourceRequirements"]),
    "empty_map_without_annotation": (
        "# -- Pod annotations.\npodAnnotations: {}\n",
        [":2: podAnnotations is an empty map: say what it holds with `# @schema {freeform: true}`"]),
    "null_default_without_a_type": (
        "# -- Storage class.\nstorageClass:\n",
        [":2: storageClass defaults to null, so its type cannot be inferred"]),
    "invalid_yaml": (
        "# -- A.\na: 1\n  b: 2\n",
        [":3: invalid YAML:"]),
    "yaml11_boolean_that_helm_reads_differently": (
        "# -- Hot standby.\nhotStandby: on\n",
        [":2: hotStandby: Helm reads the plain scalar `on` as a boolean (YAML 1.1)"]),
    "default_outside_its_own_enum": (
        "# -- Level.\n# @schema {enum: [debug, info]}\nlevel: verbose\n",
        [":3: the default of level does not match its schema: 'verbose' is not one of ['debug', 'info']"]),
    "default_that_is_not_a_kubernetes_quantity": (
        "# -- Volume size.\n# @schema {k8s: io.k8s.apimachinery.pkg.api.resource.Quantity}\nsize: 20GB\n",
        [":3: the default of size does not match its schema: '20GB' does not match"]),
    "default_resources_with_a_negative_quantity": (
        "# -- Resources.\n# @schema {k8s: io.k8s.api.core.v1.ResourceRequirements}\nresources:\n  requests: {cpu: -1}\n",
        [":4: the default of resources.requests.cpu does not match its schema: -1 is less than the minimum of 0"]),
    "bad_type_name": (
        "# -- Count.\n# @schema {type: int}\ncount: 1\n",
        [":2: count: `type: int` is not a JSON type"]),
    "freeform_on_a_scalar": (
        "# -- Name.\n# @schema {freeform: true}\nname: x\n",
        [":2: name: `freeform` is for maps, but the value is string"]),
    "remote_ref_refused": (
        "# -- Affinity.\n# @schema {$ref: 'https://example.org/affinity.json'}\naffinity: {}\n",
        [":2: affinity: `$ref: https://example.org/affinity.json` must be #/definitions/"]),
    "two_descriptions": (
        "# -- One.\n# -- Two.\na: 1\n",
        [":2: second `# --` description above a"]),
}


@pytest.mark.parametrize("values,expected", list(CASES.values()), ids=list(CASES))
def test_bad_values_exit_2_with_file_line_and_what_is_wrong(tmp_path, run, values, expected):
    chart = make_chart(tmp_path, "bad", values)
    result = run(chart)
    assert result.code == 2, result
    assert "Traceback" not in result.err
    for text in expected:
        assert text in result.err, f"{text!r} not in:\n{result.err}"
    assert all(line.startswith(str(chart / "values.yaml") + ":") for line in result.err.splitlines()), result.err
    assert not (chart / "values.schema.json").exists()


def test_every_problem_of_a_chart_is_listed_at_once(tmp_path, run):
    chart = make_chart(tmp_path, "bad", "a: 1\n# -- B.\n# @schema {maximun: 3}\nb: 2\nc: {}\n")
    result = run(chart)
    assert result.code == 2
    lines = result.err.splitlines()
    assert any(":1: a has no description" in x for x in lines)
    assert any(":3: b: unknown @schema key `maximun`" in x for x in lines)
    assert any(":5: c has no description" in x for x in lines)
    assert any(":5: c is an empty map" in x for x in lines)


def test_a_chart_with_errors_does_not_stop_the_others(tmp_path, run):
    good = make_chart(tmp_path, "good", "# -- Fine.\na: 1\n")
    bad = make_chart(tmp_path, "bad", "a: 1\n")
    result = run(bad, good)
    assert result.code == 2
    assert (good / "values.schema.json").exists() and not (bad / "values.schema.json").exists()


def test_a_parent_whose_dependency_has_errors_says_so(tmp_path, run):
    make_chart(tmp_path, "sub", "a: 1\n")
    parent = make_chart(tmp_path, "parent", "# -- The subchart.\nsub:\n  a: 2\n")
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
                                       "  - name: sub\n    version: 0.1.0\n    repository: file://../sub\n")
    result = run(parent)
    assert result.code == 2
    assert "sub/values.yaml:1: a has no description" in result.err
    assert "parent/Chart.yaml: dependency sub (sub) has errors, reported above" in result.err


def test_a_parent_value_unknown_to_the_subchart_is_an_error_with_its_line(tmp_path, run):
    make_chart(tmp_path, "sub", "# -- A.\na: 1\n")
    parent = make_chart(tmp_path, "parent", "# -- The subchart.\nsub:\n  a: 2\n  typo: 3\n")
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
                                       "  - name: sub\n    version: 0.1.0\n    repository: file://../sub\n")
    result = run(parent)
    assert result.code == 2
    assert "parent/values.yaml:4: the default of sub.typo does not match its schema: Additional properties are " \
           "not allowed ('typo' was unexpected)" in result.err


def test_a_dependency_that_is_not_a_chart_is_an_error(tmp_path, run):
    parent = make_chart(tmp_path, "parent", "# -- A.\na: 1\n")
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
                                       "  - name: sub\n    repository: file://../nowhere\n")
    result = run(parent)
    assert result.code == 2 and "Chart.yaml:5: dependency sub: file://../nowhere is not a chart" in result.err


def test_a_path_that_is_not_a_chart_is_a_usage_error(tmp_path, run):
    result = run(tmp_path)
    assert result.code == 2 and "not a chart (no Chart.yaml)" in result.err


def test_unknown_option_is_a_usage_error_not_a_traceback(run):
    result = run("--frobnicate")
    assert result.code == 2 and "usage:" in result.err


def test_the_command_line_never_prints_a_traceback(tmp_path):
    chart = make_chart(tmp_path, "bad", "# -- A.\n# @schema {k8s: [not, a, name]}\na: {}\n")
    proc = subprocess.run([sys.executable, "-m", "tools.schema", str(chart)], capture_output=True, text=True,
                          cwd=REPO_ROOT, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "values.yaml:2: a: `k8s` takes a Kubernetes definition name" in proc.stderr


def test_a_schema_hint_under_a_dependency_key_is_an_error(tmp_path, run):
    make_chart(tmp_path, "sub", "# -- A.\na: 1\n")
    parent = make_chart(tmp_path, "parent", "# -- The subchart.\n# @schema {additionalProperties: true}\nsub:\n"
                                            "  # @schema {minimum: 0}\n  a: 2\n")
    (parent / "Chart.yaml").write_text("apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
                                       "  - name: sub\n    version: 0.1.0\n    repository: file://../sub\n")
    result = run(parent)
    assert result.code == 2
    assert "values.yaml:2: sub: @schema under a dependency's key is not used" in result.err
    assert "values.yaml:4: sub.a: @schema under a dependency's key is not used" in result.err


def test_kube_version_selects_the_bundled_definitions_and_an_unknown_one_is_an_error(charts, run):
    assert run(charts / "basic", "--kube-version", "1.29.0").code == 0
    result = run(charts / "basic", "--kube-version", "9.99.0")
    assert result.code == 2 and "Traceback" not in result.err
    assert "resources: kubernetes-validate has no schemas for Kubernetes 9.99.0" in result.err
