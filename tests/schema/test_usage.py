"""--unused: values keys no template reads, .Values paths values.yaml does not define (a report, exit 0)."""

from __future__ import annotations

from tests.schema.conftest import make_chart


def test_report_names_unread_keys_and_undefined_reads_with_file_and_line(charts, run):
    result = run(charts / "cache", "--unused")
    assert result.code == 0, result.err  # a report: it never fails the run
    assert f"  {charts / 'cache' / 'values.yaml'}:17: leftover" in result.out
    assert f"  {charts / 'cache' / 'templates' / 'statefulset.yaml'}:12: .Values.auth.passwordKey" in result.out
    # global.storageClass is read but not declared: fine, a parent passes it
    assert "storageClass" not in result.out
    # `with .Values.auth` + `.secretKey`, `tpl .existingSecret`: read through the dot
    assert "auth.secretKey" not in result.out and "auth.existingSecret" not in result.out
    # `enabled` is read by the sibling umbrella's dependency condition (kv.enabled)
    assert "enabled" not in result.out


def test_umbrella_counts_subchart_templates_conditions_and_range_variables(charts, run):
    result = run(charts / "umbrella", "--unused")
    assert result.code == 0, result.err
    out = result.out
    # `range $name, $svc := .Values.services` then `$svc.timeout`: not defined for any service
    assert f"{charts / 'umbrella' / 'templates' / 'services.yaml'}:12: .Values.services.*.timeout" in out
    # the subchart's own undefined read, seen through the alias
    assert ".Values.kv.auth.passwordKey" in out
    # read by the subchart's templates / by Chart.yaml conditions / through $svc: not unused
    for used in ("kv.auth.existingSecret", "kv.enabled", "basic.enabled", "services.api.port",
                 "global.imageRegistry", "global.storageClass"):
        assert f": {used}\n" not in out, used


def test_report_follows_index_tpl_strings_and_helpers_given_the_root(tmp_path, run):
    values = (
        "# -- Read with index.\nweird:\n  # -- Read with index.\n  my-key: 1\n"
        "# -- Read from a tpl string below.\nregion: eu\n"
        "# -- A tpl string.\nendpoint: \"{{ .Values.region }}.example.org\"\n"
        "# -- Read by a helper that gets the root in a dict.\nviaHelper: 2\n"
        "# -- Tested in an if head only: its keys are not all used.\nfeature:\n"
        "  # -- Read.\n  on: true\n  # -- Never read.\n  level: 3\n"
    ).replace("  on: true", "  enabled: true")
    templates = {
        "cm.yaml": (
            "{{- if .Values.feature }}\n"
            "a: {{ index .Values.weird \"my-key\" }}\n"
            "b: {{ tpl .Values.endpoint $ }}\n"
            "c: {{ include \"t.helper\" (dict \"ctx\" $) }}\n"
            "d: {{ .Values.feature.enabled }}\n"
            "e: {{ $.Values.missing.key }}\n"
            "{{- end }}\n"
        ),
        "_helpers.tpl": "{{- define \"t.helper\" -}}\n{{ .ctx.Values.viaHelper }}\n{{- end -}}\n",
    }
    chart = make_chart(tmp_path, "t", values, templates)
    result = run(chart, "--unused")
    assert result.code == 0, result.err
    unused = [line.split(": ", 1)[1] for line in result.out.splitlines() if "values.yaml:" in line]
    assert unused == ["feature.level"]
    assert f"{chart / 'templates' / 'cm.yaml'}:6: .Values.missing.key" in result.out
