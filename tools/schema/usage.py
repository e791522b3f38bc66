"""Values versus templates: keys no template reads, and ``.Values`` paths values.yaml does not define.

A static reading of the Go templates, so it is a report (``--unused``) that never fails the run: it follows
``.Values.a.b``, ``$.Values``/``$root.Values``/``.ctx.Values`` (any ``X.Values``), ``index .Values "a" "b"``,
the dot inside ``with``/``range`` over a values path, variables bound to one (``$v := .Values.a``,
``range $k, $v := .Values.m``), ``tpl`` strings kept in values.yaml, the templates of local subcharts (under
their alias) and dependency conditions (``redis.enabled``). A read of a map counts for all its keys (it may be
passed whole to ``toYaml``), except in the head of ``if``/``with``/``range``. ``.Values.global.*`` reads in a
chart that does not declare them are fine (a parent passes them). Reads through helpers that receive a
sub-map as their context (``include "x" .Values.a``) are not followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.schema.build import Built, _is_library
from tools.schema.values import Key

ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
COMMENT = re.compile(r"^\s*/\*.*\*/\s*$", re.DOTALL)
TEMPLATE_COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.DOTALL)
ABSOLUTE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
INDEX = re.compile(r"\(?\s*index\s+(\$?[A-Za-z0-9_.]*)((?:\s+\"[^\"]*\")+)")
RELATIVE = re.compile(r"(?<![\w)\]$.])\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
BARE_DOT = re.compile(r"(?<![\w)\]$.])\.(?![\w.])")
VARIABLE = re.compile(r"\$([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)")
ASSIGN = re.compile(r"^\s*\$([A-Za-z_]\w*)\s*:?=\s*(.+)$", re.DOTALL)
RANGE_VARS = re.compile(r"^\s*range\s+(?:\$([A-Za-z_]\w*)\s*,\s*)?\$([A-Za-z_]\w*)\s*:?=\s*(.+)$", re.DOTALL)
BUILTINS = frozenset({"Values", "Release", "Chart", "Files", "Capabilities", "Template", "Subcharts"})
WILDCARD = "*"
STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|`[^`]*`")


@dataclass(frozen=True)
class Read:
    path: tuple[str, ...]
    file: Path
    line: int
    deep: bool  # the whole value is used (not only tested in an if/with/range head)


@dataclass
class Report:
    chart: Path
    unused: list[tuple[str, Path, int]] = field(default_factory=list)  # key, values file, line
    undefined: list[tuple[str, Path, int]] = field(default_factory=list)  # path, template, line


def report(built: Built) -> Report:
    reads = _chart_reads(built, ())
    for other in _parents(built.chart.path):
        reads.extend(other)
    rep = Report(built.chart.path)
    schema = built.schema
    for key in built.values.keys:
        _unused(key, schema["properties"].get(key.name, {}), reads, rep, built.values.file)
    seen: set[tuple[str, str, int]] = set()
    for r in reads:
        if r.path[:1] == ("global",) and not _declared(schema, r.path) and \
                schema["properties"]["global"].get("additionalProperties", True) is not False:
            continue
        if not _defined(schema, r.path):
            item = (".".join(r.path), str(r.file), r.line)
            if item not in seen:
                seen.add(item)
                rep.undefined.append((item[0], r.file, r.line))
    rep.undefined.sort(key=lambda u: (str(u[1]), u[2], u[0]))
    return rep


def render(rep: Report) -> str:
    name = _rel(rep.chart)
    if not rep.unused and not rep.undefined:
        return f"{name}: every value is read by a template and every .Values read is defined\n"
    lines = []
    if rep.unused:
        lines.append(f"{name}: values that no template reads ({len(rep.unused)}):")
        lines += [f"  {_rel(f)}:{line}: {k}" for k, f, line in rep.unused]
    if rep.undefined:
        lines.append(f"{name}: .Values paths that values.yaml does not define ({len(rep.undefined)}):")
        lines += [f"  {_rel(f)}:{line}: .Values.{p}" for p, f, line in rep.undefined]
    return "\n".join(lines) + "\n"


def _chart_reads(built: Built, prefix: tuple[str, ...]) -> list[Read]:
    reads: list[Read] = []
    chart = built.chart
    for base in (chart.templates, chart.path / "files"):
        if base.is_dir():
            for file in sorted(p for p in base.rglob("*") if p.is_file()):
                reads.extend(template_reads(file))
    for key in built.values.walk():  # strings evaluated with `tpl` may read values themselves
        if isinstance(key.value, str) and "{{" in key.value:
            reads.extend(_reads_in_text(key.value, built.values.file, key.line))
    for dep in chart.dependencies:
        if dep.condition:
            for cond in dep.condition.split(","):
                reads.append(Read(tuple(cond.strip().split(".")), chart.path / "Chart.yaml", 0, False))
        sub = built.subcharts.get(dep.key)
        if sub is not None:
            library = _is_library(dep)  # its helpers run with the caller's .Values, not under dep.key
            for r in _chart_reads(sub, ()):
                path = r.path if r.path[:1] == ("global",) or library else (dep.key, *r.path)
                reads.append(Read(path, r.file, r.line, r.deep))
    return [Read(prefix + r.path, r.file, r.line, r.deep) for r in reads]


def _parents(path: Path) -> list[list[Read]]:
    """Dependency conditions of sibling charts that use this one (they read its `enabled`)."""
    from tools.schema import chart as chart_mod
    from tools.schema.errors import ChartError

    found = []
    me = path.resolve()
    for other in chart_mod.discover(path.resolve().parent):
        if other.resolve() == me:
            continue
        try:
            parent = chart_mod.read(other)
        except ChartError:
            continue
        for dep in parent.dependencies:
            if dep.path and dep.path.resolve() == me and dep.condition:
                reads = []
                for cond in dep.condition.split(","):
                    parts = tuple(cond.strip().split("."))
                    if parts[:1] == (dep.key,):
                        reads.append(Read(parts[1:], other / "Chart.yaml", 0, False))
                found.append(reads)
    return found


def template_reads(file: Path) -> list[Read]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return _reads_in_text(text, file, 1)


def _reads_in_text(text: str, file: Path, first_line: int) -> list[Read]:
    reads: list[Read] = []
    # A stack of scopes: (dot's values path or None, variables bound in that scope).
    # The dot starts as the root context (.Values, .Release...), which is not a values path: None.
    stack: list[tuple[tuple[str, ...] | None, dict[str, tuple[str, ...]]]] = [(None, {})]
    text = TEMPLATE_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for match in ACTION.finditer(text):
        body = match.group(1)
        if COMMENT.match(body):
            continue
        line = first_line + text.count("\n", 0, match.start())
        stripped = body.strip()
        word = stripped.split(None, 1)[0] if stripped else ""
        dot, _ = stack[-1]
        variables = {k: v for _, scope in stack for k, v in scope.items()}

        head = word in ("if", "with", "range") or stripped.startswith(("else if", "else with"))
        for path in _paths(stripped, dot, variables):
            reads.append(Read(path, file, line, not head))
        if word == "end":
            if len(stack) > 1:
                stack.pop()
        elif word in ("define", "block"):
            stack.append((None, {}))
        elif word == "if":
            stack.append((dot, {}))
        elif word in ("with", "range"):
            expr = stripped[len(word):].strip()
            scope: dict[str, tuple[str, ...]] = {}
            new_dot: tuple[str, ...] | None = None
            rv = RANGE_VARS.match(stripped) if word == "range" else None
            if rv:
                target = _value_of(rv.group(3), dot, variables)
                if target is not None:
                    scope[rv.group(2)] = (*target, WILDCARD)
                    new_dot = (*target, WILDCARD)
            else:
                assign = ASSIGN.match(expr)
                target = _value_of(assign.group(2) if assign else expr, dot, variables)
                if target is not None:
                    new_dot = (*target, WILDCARD) if word == "range" else target
                    if assign:
                        scope[assign.group(1)] = target
            stack.append((new_dot, scope))
        else:
            assign = ASSIGN.match(stripped)
            if assign:
                target = _value_of(assign.group(2), dot, variables)
                if target is not None:
                    stack[-1][1][assign.group(1)] = target
    return reads


def _value_of(expr: str, dot: tuple[str, ...] | None, variables: dict[str, tuple[str, ...]]) -> \
        tuple[str, ...] | None:
    """The values path an expression evaluates to, when it is a plain path."""
    expr = expr.strip().strip("()").strip()
    m = re.fullmatch(r"[$\w.]*?\.Values((?:\.[A-Za-z_]\w*)*)", expr)
    if m:
        return tuple(p for p in m.group(1).split(".") if p)
    m = INDEX.fullmatch(expr)
    if m:
        base = _value_of(m.group(1), dot, variables)
        if base is not None:
            return (*base, *re.findall(r"\"([^\"]*)\"", m.group(2)))
    m = re.fullmatch(r"\$([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)", expr)
    if m and m.group(1) in variables:
        return (*variables[m.group(1)], *[p for p in m.group(2).split(".") if p])
    m = re.fullmatch(r"\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", expr)
    if m and dot is not None and m.group(1).split(".")[0] not in BUILTINS:
        return (*dot, *m.group(1).split("."))
    if expr == "." and dot is not None:
        return dot
    return None


def _paths(action: str, dot: tuple[str, ...] | None, variables: dict[str, tuple[str, ...]]) -> \
        list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for m in INDEX.finditer(action):
        base = _value_of(m.group(1), dot, variables)
        if base is not None:
            found.append((*base, *re.findall(r"\"([^\"]*)\"", m.group(2))))
            action = action[: m.start()] + " " * (m.end() - m.start()) + action[m.end():]
    # string literals hold no reads (a path in "files/x.yaml" is text)
    action = STRING.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', action)
    for m in ABSOLUTE.finditer(action):
        found.append(tuple(p for p in m.group(1).split(".") if p))
    if dot is not None:
        for m in RELATIVE.finditer(action):
            parts = m.group(1).split(".")
            if parts[0] not in BUILTINS:
                found.append((*dot, *parts))
        if dot and BARE_DOT.search(action):
            found.append(dot)
    for m in VARIABLE.finditer(action):
        name = m.group(1)
        if name in variables:
            found.append((*variables[name], *[p for p in m.group(2).split(".") if p]))
    return found


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return all(p == WILDCARD or q == WILDCARD or p == q for p, q in zip(pattern, path))


def _unused(key: Key, schema: dict[str, Any], reads: list[Read], rep: Report, file: Path) -> None:
    used = False
    for r in reads:
        n = len(r.path)
        if n >= len(key.path):
            if _matches(r.path[: len(key.path)], key.path):
                used = True
                break
        elif r.deep and _matches(r.path, key.path[:n]):
            used = True
            break
    if not used:
        rep.unused.append((key.dotted, file, key.line))
        return
    props = schema.get("properties")
    if isinstance(props, dict) and isinstance(key.value, dict):
        for child in key.children:
            _unused(child, props.get(child.name, {}), reads, rep, file)


def _declared(schema: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = schema
    for part in path:
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or part not in props:
            return False
        node = props[part]
    return True


def _defined(schema: dict[str, Any], path: tuple[str, ...]) -> bool:
    if not path:
        return True
    props = schema.get("properties")
    extra = schema.get("additionalProperties", True)
    if not isinstance(props, dict):
        # an open map, a Kubernetes type, or a scalar; only a scalar cannot have children
        t = schema.get("type")
        types = t if isinstance(t, list) else [t]
        return t is None or "object" in types or "array" in types
    head, rest = path[0], path[1:]
    if head == WILDCARD:
        return extra is not False or any(_defined(s, rest) for s in props.values())
    if head in props:
        return _defined(props[head], rest)
    return extra is not False


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
