"""Lint cases: one clean baseline (fixtures/baseline.yaml) plus one small patch per case.

Each rule has ``fixtures/<rule-id>.yaml``::

    rule: run-as-non-root
    pass:
      - case: uid-on-the-pod-only            # a name for the test id
        about: the pod's runAsUser is inherited by the container
        in: Deployment/nova-services/api     # the object the patch steps edit (default for every step)
        patch:
          - {delete: spec.template.spec.containers[0].securityContext.runAsUser}
    fail:
      - case: root-uid
        about: root UID and runAsNonRoot false
        in: Deployment/nova-services/api
        patch:
          - {set: spec.template.spec.containers[0].securityContext.runAsUser, value: 0}
        expect:
          - {object: Deployment/nova-services/api, container: api,
             path: spec.template.spec.containers[0].securityContext.runAsUser, message: "runs as UID 0"}

Patch steps: ``set`` PATH to ``value`` (missing mappings on the way are created), ``delete`` PATH
(it must exist), ``merge`` the mapping ``value`` into the mapping at PATH, ``append`` ``value`` to the
list at PATH, ``add`` a whole new object, ``remove`` an object (``Kind/namespace/name``). A step may
name its own object with ``in``. PATH is a JSON path as findings print it (``a.b[0].c``; a key with
dots is written ``a["nova-lint.io/x"]``).

``expect`` lists every finding the case produces, of every rule: ``rule`` (default: this file's),
``object``, ``container`` (null for none), ``path`` and optionally a ``message`` substring. The test
asserts the run's findings are exactly these, so a case that fails for another reason (another
rule, object, container or path) fails. A passing case has no finding of its own rule. ``options``
(``{rule-id: {setting: value}}``) and ``kube-versions`` (default ["1.29"]) configure the run.
Top-level keys starting with ``_`` hold YAML anchors that several cases share (``_job: &job``).
"""

from __future__ import annotations

import atexit
import copy
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tools import manifest
from tools.lint.config import parse_config
from tools.lint.engine import lint
from tools.lint.finding import Finding
from tools.lint.inputs import parse_manifests

FIXTURES = Path(__file__).parent / "fixtures"
BASELINE = FIXTURES / "baseline.yaml"
STEP_VERBS = ("set", "delete", "merge", "append", "add", "remove")
CASE_KEYS = ("case", "about", "in", "patch", "expect", "options", "kube-versions")
EXPECT_KEYS = ("rule", "object", "container", "path", "message")
_TOKEN = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["([^"]+)"\]')


class CaseError(Exception):
    """A cases file is wrong; the message names the file, the case and the step."""


@dataclass(frozen=True)
class Expected:
    rule: str
    object: str
    container: str | None
    path: str
    message: str = ""

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        return (self.rule, self.object, self.container, self.path)


@dataclass(frozen=True)
class Case:
    rule: str
    outcome: str  # "pass" or "fail"
    name: str
    about: str
    steps: tuple[Mapping[str, Any], ...]
    expect: tuple[Expected, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    kube_versions: tuple[str, ...] = ("1.29",)

    @property
    def id(self) -> str:
        return f"{self.rule}/{self.outcome}/{self.name}"


def finding_key(f: Finding) -> tuple[str, str, str | None, str]:
    return (f.rule, f.object_ref, f.container, f.path)


def parse_path(path: str) -> list[str | int]:
    """``a.b[0]["x.y"]`` -> ["a", "b", 0, "x.y"]; raises ValueError for anything else."""
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None or (pos == 0 and path.startswith(".")):
            raise ValueError(f"bad path {path!r} at {path[pos:]!r}")
        key, index, quoted = match.groups()
        tokens.append(int(index) if index is not None else (quoted if quoted is not None else key))
        pos = match.end()
    if not tokens:
        raise ValueError("empty path")
    return tokens


def _walk(doc: Any, tokens: list[str | int], create: bool) -> Any:
    node = doc
    for i, token in enumerate(tokens):
        where = "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens[: i + 1]).lstrip(".")
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                raise ValueError(f"{where}: no such list item")
            node = node[token]
        elif isinstance(node, dict):
            if token not in node:
                if not create:
                    raise ValueError(f"{where}: no such key")
                node[token] = {}
            node = node[token]
        else:
            raise ValueError(f"{where}: parent is not a mapping")  # noqa: TRY004 (apply_step's callers catch ValueError)
    return node


def find_object(docs: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    parts = ref.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"object {ref!r}: write Kind/namespace/name (or Kind/name)")
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    for doc in docs:
        meta = doc.get("metadata") or {}
        if doc.get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace:
            return doc
    raise ValueError(f"object {ref!r} is not in the baseline (after the earlier steps)")


def apply_step(docs: list[dict[str, Any]], step: Mapping[str, Any], default_object: str | None) -> None:
    """Apply one patch step to ``docs`` in place; ValueError says what does not fit."""
    verbs = [v for v in STEP_VERBS if v in step]
    extra = set(step) - {*STEP_VERBS, "value", "in"}
    if len(verbs) != 1 or extra:
        raise ValueError(f"a step has exactly one of {', '.join(STEP_VERBS)} (plus value/in), got {sorted(step)}")
    verb = verbs[0]
    if verb == "add":
        docs.append(copy.deepcopy(step["add"]))
        return
    if verb == "remove":
        docs.remove(find_object(docs, str(step["remove"])))
        return
    ref = step.get("in", default_object)
    if ref is None:
        raise ValueError(f"{verb}: which object? give 'in: Kind/namespace/name' on the step or the case")
    if verb != "delete" and "value" not in step:
        raise ValueError(f"{verb} {step[verb]}: needs a value")
    doc = find_object(docs, str(ref))
    tokens = parse_path(str(step[verb]))
    parent = _walk(doc, tokens[:-1], create=verb in ("set", "merge", "append"))
    last = tokens[-1]
    if verb == "delete":
        _walk(parent, [last], create=False)
        del parent[last]
    elif verb == "set":
        if isinstance(last, int):
            _walk(parent, [last], create=False)
        parent[last] = copy.deepcopy(step["value"])
    elif verb == "merge":
        target = _walk(parent, [last], create=True)
        if not isinstance(target, dict) or not isinstance(step["value"], dict):
            raise ValueError(f"merge {step[verb]}: both the target and the value must be mappings")
        target.update(copy.deepcopy(step["value"]))
    else:
        target = parent.setdefault(last, []) if isinstance(parent, dict) else _walk(parent, [last], create=False)
        if not isinstance(target, list):
            raise ValueError(f"append {step[verb]}: not a list")
        target.append(copy.deepcopy(step["value"]))


@cache
def baseline_docs() -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all(BASELINE.read_text()) if d)


def case_docs(case: Case) -> list[dict[str, Any]]:
    """The baseline with the case's patch applied."""
    docs = copy.deepcopy(list(baseline_docs()))
    for i, step in enumerate(case.steps):
        try:
            apply_step(docs, step, None)
        except (ValueError, KeyError) as exc:
            raise CaseError(f"{FIXTURES / case.rule}.yaml: {case.id}: patch[{i}]: {exc}") from None
    return docs


def manifest_text(case: Case) -> str:
    """The case as a multi-document manifest (a comment line, then each object after ``---``)."""
    body = "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in case_docs(case))
    return f"# {case.id}: {case.about}\n{body}"


def lint_case(case: Case) -> list[Finding]:
    config = parse_config({"rules": dict(case.options)}, f"{case.id} options")
    return lint(parse_manifests(manifest_text(case), f"{case.id}.yaml"), config, list(case.kube_versions))


def mismatches(case: Case, found: list[Finding]) -> list[str]:
    """Why ``found`` is not exactly what the case states (empty when it is): missing, unexpected, wrong message."""
    shown = {finding_key(f): f for f in found}
    want = Counter(e.key for e in case.expect)
    got = Counter(finding_key(f) for f in found)
    problems = [f"missing {k}" for k in (want - got).elements()]
    problems += [f"unexpected {k}: {shown[k].message}" for k in (got - want).elements()]
    for e in case.expect:
        if e.message and not any(finding_key(f) == e.key and e.message in f.message for f in found):
            problems.append(f"no finding at {e.key} says {e.message!r}")
    if case.outcome == "pass" and any(e.rule == case.rule for e in case.expect):
        problems.append("a passing case expects no finding of its own rule")
    if case.outcome == "fail" and not any(e.rule == case.rule for e in case.expect):
        problems.append("a failing case expects at least one finding of its rule")
    return problems


def _steps(raw: Any, default_object: str | None, where: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(raw, list):
        raise CaseError(f"{where}: patch must be a list of steps")
    return tuple({**({"in": default_object} if default_object else {}), **s} if isinstance(s, dict) and
                 not ({"add", "remove"} & s.keys()) else s for s in raw)


def _expected(raw: Any, rule: str, where: str) -> tuple[Expected, ...]:
    if not isinstance(raw, list):
        raise CaseError(f"{where}: expect must be a list of findings")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - set(EXPECT_KEYS) or not {"object", "container", "path"} <= set(item):
            raise CaseError(f"{where}: expect[{i}] needs object, container (null for none) and path "
                            f"(and may have rule, message), got {item!r}")
        out.append(Expected(str(item.get("rule", rule)), str(item["object"]), item["container"], str(item["path"]),
                            str(item.get("message", ""))))
    return tuple(out)


def load_rule_cases(path: Path) -> list[Case]:
    data = manifest.load(path.read_text()) or {}  # libyaml, as yaml.safe_load reads it: every worker loads all
    rule = path.stem
    if data.get("rule") != rule:
        raise CaseError(f"{path}: first key must be 'rule: {rule}' (the file name)")
    unknown = {k for k in data if not str(k).startswith("_")} - {"rule", "pass", "fail"}
    if unknown:
        raise CaseError(f"{path}: unknown keys {sorted(unknown)} (keys starting with _ may hold YAML anchors)")
    cases = []
    for outcome in ("pass", "fail"):
        for i, raw in enumerate(data.get(outcome) or []):
            where = f"{path}: {outcome}[{i}]"
            if not isinstance(raw, dict) or set(raw) - set(CASE_KEYS) or not raw.get("case") or not raw.get("about"):
                raise CaseError(f"{where}: a case has case and about (and {', '.join(CASE_KEYS[2:])}), got {raw!r}")
            versions = tuple(str(v) for v in raw.get("kube-versions", ["1.29"]))
            cases.append(Case(rule, outcome, str(raw["case"]), str(raw["about"]),
                              _steps(raw.get("patch", []), raw.get("in"), where),
                              _expected(raw.get("expect", []), rule, where), raw.get("options") or {}, versions))
    return cases


@cache
def all_cases() -> tuple[Case, ...]:
    return tuple(c for p in sorted(FIXTURES.glob("*.yaml")) if p != BASELINE for c in load_rule_cases(p))


def get_case(rule: str, name: str) -> Case:
    for case in all_cases():
        if case.rule == rule and case.name == name:
            return case
    raise KeyError(f"no case {name!r} in {FIXTURES / rule}.yaml")


@cache
def _case_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="nova-lint-cases-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def case_file(rule: str, name: str) -> Path:
    """The case written as a manifest file (for the CLI's ``--manifests FILE``), in a temp dir of this run."""
    case = get_case(rule, name)
    path = _case_dir() / f"{rule}--{name}.yaml"
    if not path.exists():
        path.write_text(manifest_text(case))
    return path
