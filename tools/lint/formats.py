"""Output formats. Each formatter takes findings and what the run checked (:class:`RunInfo`: counts, and
the renders or loads that failed) and knows nothing about rules. A run with errors never reads as
clean in any format: text and github say FAILED, JSON has ``errors`` and ``ok: false``, SARIF sets
``invocations[].executionSuccessful: false`` with a toolExecutionNotification per error, JUnit has an
error test case per error."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from itertools import groupby

from tools.lint.finding import Finding, RunError, RunInfo, Severity

TOOL_NAME = "nova-lint"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _where(f: Finding) -> str:
    return f.template or f.input or "<input>"


def _counts(findings: Sequence[Finding], fail_on: Severity) -> str:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in Severity}
    parts = [f"{n} {s}" for s, n in sorted(counts.items(), reverse=True) if n]
    failing = sum(1 for f in findings if f.severity >= fail_on)
    noun = "finding" if len(findings) == 1 else "findings"
    return f"{len(findings)} {noun} ({', '.join(parts)}); {failing} at or above {fail_on}"


def summary(findings: Sequence[Finding], fail_on: Severity, run: RunInfo | None = None) -> str:
    """The one last line of a report: findings, errors, and what was checked."""
    if run is not None and run.errors and all(e.kind == "empty" for e in run.errors):
        return f"FAILED: nothing to lint ({'; '.join(e.message for e in run.errors)}); {run.checked()}"
    if run is not None and run.errors:
        kinds = ", ".join(sorted({e.label for e in run.errors}))
        found = _counts(findings, fail_on) if findings else "0 findings"
        return (f"FAILED: {len(run.errors)} input{'s' if len(run.errors) != 1 else ''} not checked ({kinds}); "
                f"{found} in the rest; {run.checked()}")
    found = _counts(findings, fail_on) if findings else "no findings"
    return f"{found}; {run.checked()}" if run is not None else found


def _errors(run: RunInfo | None) -> tuple[RunError, ...]:
    return run.errors if run is not None else ()


def format_text(findings: Sequence[Finding], fail_on: Severity = Severity.WARNING, run: RunInfo | None = None) -> str:
    """Errors first, then findings grouped by input and template, then object; one summary line last."""
    lines: list[str] = []
    if _errors(run):
        lines.append("could not check:")
        lines += [f"  {e}" for e in _errors(run)]
    ordered = sorted(findings, key=Finding.sort_key)
    for (input_name, template), group in groupby(ordered, key=lambda f: (f.input, f.template)):
        head = template or "(no template)"
        lines.append(f"{head}" + (f"  [{input_name}]" if input_name else ""))
        for ref, items in groupby(group, key=lambda f: f.object_ref):
            lines.append(f"  {ref}")
            for f in items:
                where = f" [{f.container}]" if f.container else ""
                lines.append(f"    {f.severity!s:<7} {f.rule}{where}: {f.message}")
                lines.append(f"            at {f.path}" + (f" (line {f.line})" if f.line else ""))
                lines.append(f"            fix: {f.remediation}")
    lines.append(summary(findings, fail_on, run))
    return "\n".join(lines) + "\n"


def format_json(findings: Sequence[Finding], fail_on: Severity = Severity.WARNING, run: RunInfo | None = None) -> str:
    data: dict[str, object] = {
        "tool": TOOL_NAME,
        "failOn": str(fail_on),
        "ok": not _errors(run),
        "errors": [e.to_dict() for e in _errors(run)],
        "findings": [f.to_dict() for f in sorted(findings, key=Finding.sort_key)],
        "summary": {str(s): sum(1 for f in findings if f.severity == s) for s in Severity},
    }
    if run is not None:
        data["checked"] = run.to_dict()
        data["summaryLine"] = summary(findings, fail_on, run)
    return json.dumps(data, indent=2) + "\n"


def parse_json(text: str) -> list[Finding]:
    """The findings of :func:`format_json` output."""
    return [Finding.from_dict(d) for d in json.loads(text)["findings"]]


def _fingerprint(f: Finding) -> str:
    key = "\0".join([f.rule, f.kind, f.namespace or "", f.name, f.container or "", f.path, f.input])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _invocation(run: RunInfo | None, findings: Sequence[Finding], fail_on: Severity) -> dict[str, object]:
    """SARIF invocation: executionSuccessful false, and one error notification per failed render or load."""
    invocation: dict[str, object] = {"executionSuccessful": not _errors(run)}
    if _errors(run):
        invocation["toolExecutionNotifications"] = [{
            "level": "error",
            "message": {"text": str(e)},
            "descriptor": {"id": f"{e.kind}-error"},
            "properties": {"kind": e.kind, "input": e.input},
        } for e in _errors(run)]
    if run is not None:
        invocation["properties"] = {"checked": run.to_dict(), "summary": summary(findings, fail_on, run)}
    return invocation


def format_sarif(findings: Sequence[Finding], fail_on: Severity = Severity.WARNING, run: RunInfo | None = None) -> str:
    """SARIF 2.1.0 for GitHub code scanning: the rules array is built from the findings themselves."""
    ordered = sorted(findings, key=Finding.sort_key)
    rule_ids = sorted({f.rule for f in ordered})
    first = {rid: next(f for f in ordered if f.rule == rid) for rid in rule_ids}
    rules = [{
        "id": rid,
        "name": "".join(p.capitalize() for p in rid.split("-")),
        "shortDescription": {"text": rid},
        "help": {"text": first[rid].remediation},
        "defaultConfiguration": {"level": _SARIF_LEVEL[first[rid].severity]},
    } for rid in rule_ids]
    results = []
    for f in ordered:
        message = f"{f.object_ref}" + (f" container {f.container}" if f.container else "") + f": {f.message}"
        uri = urllib.parse.quote(_where(f), safe="/._-~")
        physical: dict[str, object] = {"artifactLocation": {"uri": uri}}
        physical["region"] = {"startLine": f.line or 1}
        results.append({
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{message}. Fix: {f.remediation}"},
            "locations": [{
                "physicalLocation": physical,
                "logicalLocations": [{"fullyQualifiedName": f"{f.object_ref}:{f.path}", "kind": "object"}],
            }],
            "partialFingerprints": {"novaLintFinding/v1": _fingerprint(f)},
            "properties": {"input": f.input, "path": f.path, "container": f.container},
        })
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "rules": rules}},
            "invocations": [_invocation(run, ordered, fail_on)],
            "results": results,
        }],
    }
    return json.dumps(sarif, indent=2) + "\n"


def format_junit(findings: Sequence[Finding], fail_on: Severity = Severity.WARNING, run: RunInfo | None = None) -> str:
    """One testcase per (object, rule) that failed and one error case per failed render or load; one
    passing case only when there is nothing to report and nothing failed."""
    ordered = sorted(findings, key=Finding.sort_key)
    failing = [f for f in ordered if f.severity >= fail_on]
    errors = _errors(run)
    tests = str(max(len(ordered) + len(errors), 1))
    timing = {"time": f"{run.seconds:.3f}"} if run is not None else {}
    suites = ET.Element("testsuites", name=TOOL_NAME, tests=tests, failures=str(len(failing)),
                        errors=str(len(errors)), **timing)
    suite = ET.SubElement(suites, "testsuite", name=TOOL_NAME, tests=tests, failures=str(len(failing)),
                          errors=str(len(errors)), skipped=str(len(ordered) - len(failing)), **timing)
    for e in errors:
        case = ET.SubElement(suite, "testcase", classname=f"{TOOL_NAME}.{e.kind}-error", name=e.input or e.kind)
        error = ET.SubElement(case, "error", message=e.message, type=f"{e.kind} error")
        error.text = str(e)
    if not ordered and not errors:
        ET.SubElement(suite, "testcase", classname=TOOL_NAME, name="all rules")
    for f in ordered:
        name = f"{f.object_ref}" + (f" [{f.container}]" if f.container else "") + f" {f.path}"
        case = ET.SubElement(suite, "testcase", classname=f.rule, name=name, file=_where(f))
        body = f"{f.message}\nfix: {f.remediation}\ntemplate: {_where(f)}" + (f"\ninput: {f.input}" if f.input else "")
        if f.severity >= fail_on:
            failure = ET.SubElement(case, "failure", message=f.message, type=str(f.severity))
            failure.text = body
        else:
            skipped = ET.SubElement(case, "skipped", message=f"{f.severity}: {f.message}")
            skipped.text = body
    if run is not None:
        ET.SubElement(suite, "system-out").text = summary(findings, fail_on, run)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding], fail_on: Severity = Severity.WARNING, run: RunInfo | None = None) -> str:
    """GitHub Actions workflow commands: ``::error file=...,title=...::message``; failed renders and loads
    are errors too, and the summary line is last (a notice, or an error when something failed)."""
    lines = [f"::error title={_escape_property(f'{TOOL_NAME} {e.kind} error')}::{_escape_data(str(e))}"
             for e in _errors(run)]
    for f in sorted(findings, key=Finding.sort_key):
        props = [f"file={_escape_property(_where(f))}"]
        if f.line:
            props.append(f"line={f.line}")
        props.append(f"title={_escape_property(f'{TOOL_NAME} {f.rule}')}")
        where = f" [{f.container}]" if f.container else ""
        text = f"{f.object_ref}{where} {f.path}: {f.message}\nfix: {f.remediation}"
        lines.append(f"::{_GITHUB_LEVEL[f.severity]} {','.join(props)}::{_escape_data(text)}")
    if run is not None:
        level = "error" if run.errors else "notice"
        lines.append(f"::{level} title={_escape_property(f'{TOOL_NAME} summary')}::"
                     f"{_escape_data(summary(findings, fail_on, run))}")
    return "\n".join(lines) + ("\n" if lines else "")


FORMATTERS: dict[str, Callable[[Sequence[Finding], Severity, RunInfo | None], str]] = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "junit": format_junit,
    "github": format_github,
}
