"""values.yaml keys and their annotations -> a JSON Schema (draft-07) for the chart's values."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from tools.schema import values as values_mod
from tools.schema.chart import Chart, Dependency
from tools.schema.errors import ChartError, Problem
from tools.schema.values import Key, Values

DRAFT07 = "http://json-schema.org/draft-07/schema#"
JSON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
# Draft-07 keywords an annotation may set; they are copied into the key's schema as written.
KEYWORDS = frozenset({
    "$comment", "additionalItems", "additionalProperties", "allOf", "anyOf", "const", "contains",
    "contentEncoding", "contentMediaType", "default", "dependencies", "description", "else", "enum", "examples",
    "exclusiveMaximum", "exclusiveMinimum", "format", "if", "items", "maxItems", "maxLength", "maxProperties",
    "maximum", "minItems", "minLength", "minProperties", "minimum", "multipleOf", "not", "oneOf", "pattern",
    "patternProperties", "properties", "propertyNames", "readOnly", "required", "then", "title", "type",
    "uniqueItems", "writeOnly", "$ref",
})
# Our extensions (docs/values-annotations.md).
EXTENSIONS = frozenset({"k8s", "freeform", "nullable", "required", "items", "like"})
NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
GLOBAL_DESCRIPTION = "Global values, shared by a parent chart with all its subcharts (set by Helm)."


@dataclass
class Built:
    """A chart's generated schema, with what the README and the usage report need."""

    chart: Chart
    values: Values
    schema: dict[str, Any]
    subcharts: dict[str, Built] = field(default_factory=dict)  # by the key in this chart's values

    def text(self) -> str:
        from tools.schema import jsontext

        return jsontext.dumps(self.schema) + "\n"  # json.dumps(indent=2, sort_keys=True, ensure_ascii=False)


class _Context:
    def __init__(self, values: Values, k8s_version: str | None):
        self.values = values
        self.k8s_version = k8s_version
        self.k8s_names: set[str] = set()
        self.problems: list[Problem] = []

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.values.file, line, message))

    def k8s_ref(self, name: Any, key: Key) -> str | None:
        from tools.schema import k8s

        if not isinstance(name, str) or not name:
            self.problem(key.hint_line, f"{key.dotted}: `k8s` takes a Kubernetes definition name such as "
                                        "io.k8s.api.core.v1.ResourceRequirements")
            return None
        version = self.k8s_version or k8s.K8S_VERSION
        try:
            k8s.check(name, version)
        except k8s.UnknownDefinition as exc:
            self.problem(key.hint_line, f"{key.dotted}: {exc}")
            return None
        except FileNotFoundError as exc:
            self.problem(key.hint_line, f"{key.dotted}: {exc}")
            return None
        self.k8s_names.add(name)
        return "#/definitions/" + name


def build(chart: Chart, subcharts: dict[str, Built], k8s_version: str | None = None) -> Built:
    """The chart's schema; raise ChartError with every problem found (file:line: message)."""
    values = values_mod.load(chart.values_file)
    ctx = _Context(values, k8s_version)
    ctx.problems.extend(values.problems)
    if values.problems and not values.keys:
        raise ChartError(ctx.problems)
    deps = {d.key: d for d in chart.dependencies}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key in values.keys:
        if key.name in deps:
            properties[key.name] = _dependency(ctx, key, deps[key.name], subcharts.get(key.name))
            for k in key.walk():
                if k.hints:
                    ctx.problem(k.hint_line, f"{k.dotted}: @schema under a dependency's key is not used (the "
                                             f"{deps[key.name].name} chart's own schema applies): remove it")
            if key.description is None:
                ctx.problem(key.line, f"{key.dotted} has no description: add a `# --` comment line above it")
        else:
            properties[key.name] = _key(ctx, key, umbrella=any(not _is_library(d) for d in deps.values()))
            if _required_flag(key):
                required.append(key.name)
    for dep in chart.dependencies:  # a dependency the parent's values.yaml does not mention is still settable
        if dep.key not in properties:
            properties[dep.key] = _dependency(ctx, None, dep, subcharts.get(dep.key))
    if "global" not in properties:
        properties["global"] = {"type": "object", "description": GLOBAL_DESCRIPTION}
    root: dict[str, Any] = {
        "$schema": DRAFT07,
        "title": f"Values of the {chart.name} chart",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        root["required"] = sorted(required)
    definitions: dict[str, Any] = {}
    for sub in subcharts.values():
        definitions.update(sub.schema.get("definitions", {}))
    if ctx.k8s_names:
        from tools.schema import k8s

        definitions.update(k8s.bundle(ctx.k8s_names, ctx.k8s_version or k8s.K8S_VERSION))
    if definitions:
        root["definitions"] = definitions
    if not ctx.problems:
        _self_check(ctx, root)
    if ctx.problems:
        raise ChartError(_sorted(ctx.problems))
    return Built(chart, values, root, subcharts)


def _dependency(ctx: _Context, key: Key | None, dep: Dependency, sub: Built | None) -> dict[str, Any]:
    if key is not None and not isinstance(key.value, dict):
        ctx.problem(key.line, f"{key.dotted} configures the dependency {dep.name}: it must be a mapping")
    if sub is None:
        schema: dict[str, Any] = {"type": "object"}  # not a local chart: we cannot know its values
        note = f"Values of the {dep.name} dependency ({dep.repository or 'not local'})."
    else:
        schema = {k: copy.deepcopy(v) for k, v in sub.schema.items()
                  if k not in ("$schema", "definitions", "title")}
        note = f"Values of the {dep.name} subchart (see its README)."
    schema["description"] = (key.description if key is not None and key.description else note)
    return schema


def _required_flag(key: Key) -> bool:
    return key.hints.get("required") is True


def _is_library(dep: Dependency) -> bool:
    """A library dependency (Chart.yaml `type: library`) shares helpers only: it does not make its parent an
    umbrella, so the parent's `global` stays open to what its own parent sets."""
    try:
        text = (dep.path / "Chart.yaml").read_text(encoding="utf-8") if dep.path else ""
    except OSError:
        return False
    return re.search(r"^type:\s*['\"]?library['\"]?\s*$", text, re.MULTILINE) is not None


def _key(ctx: _Context, key: Key, umbrella: bool = False) -> dict[str, Any]:
    hints = dict(key.hints)
    if not _check_hints(ctx, key, hints):
        hints = {}
    if key.description is None:
        ctx.problem(key.line, f"{key.dotted} has no description: add a `# --` comment line above it")
    value = key.value
    req = hints.pop("required", None)
    k8s_name = hints.pop("k8s", None)
    freeform = hints.pop("freeform", False)
    nullable = hints.pop("nullable", False)
    items = hints.pop("items", None)
    is_global = key.path == ("global",)
    schema: dict[str, Any]
    if k8s_name is not None:
        ref = ctx.k8s_ref(k8s_name, key)
        schema = {"$ref": ref} if ref else {}
        if ref and isinstance(value, list):
            from tools.schema import k8s

            if not k8s.is_array(k8s_name, ctx.k8s_version or k8s.K8S_VERSION):
                schema = {"type": "array", "items": {"$ref": ref}}
    elif "$ref" in hints:
        schema = {"$ref": _local_ref(ctx, key, hints.pop("$ref"))}
    elif isinstance(value, dict) or (value is None and hints.get("type") == "object"):
        extra = hints.get("additionalProperties")
        if freeform or extra is True or isinstance(extra, dict):
            schema = {"type": "object", "additionalProperties": True}
            if isinstance(extra, dict):
                schema["additionalProperties"] = _hint_schema(ctx, key, hints.pop("additionalProperties"))
        else:
            if not key.children and not hints.get("properties"):
                ctx.problem(key.line, f"{key.dotted} is an empty map: say what it holds with "
                                      "`# @schema {freeform: true}` (any keys), `{k8s: <definition>}`, or "
                                      "`{additionalProperties: {type: string}}`")
            properties = {c.name: _key(ctx, c) for c in key.children}
            schema = {"type": "object", "properties": properties,
                      "additionalProperties": bool(is_global and not umbrella)}
            child_required = sorted(c.name for c in key.children if _required_flag(c))
            if isinstance(req, list):
                for name in req:
                    if name not in properties:
                        ctx.problem(key.hint_line, f"{key.dotted}: `required` names {name!r}, which is not a "
                                                   f"key of {key.dotted} (keys: {', '.join(properties) or 'none'})")
                child_required = sorted(set(child_required) | {str(n) for n in req})
            if child_required:
                schema["required"] = child_required
    elif isinstance(value, list):
        schema = {"type": "array"}
        item_types = sorted({_json_type(v) for v in value} - {"null"})
        if len(item_types) == 1:
            schema["items"] = {"type": item_types[0]}
    else:
        schema = {}
        if value is None:
            if "type" not in hints:
                ctx.problem(key.line, f"{key.dotted} defaults to null, so its type cannot be inferred: add "
                                      "`# @schema {type: string, nullable: true}` (or the type it takes)")
        else:
            schema["type"] = _json_type(value)
    if freeform and not isinstance(value, dict) and hints.get("type") != "object":
        ctx.problem(key.hint_line, f"{key.dotted}: `freeform` is for maps, but the value is {_json_type(value)}")
    if items is not None:
        if isinstance(value, dict) or (value is not None and not isinstance(value, list)):
            ctx.problem(key.hint_line, f"{key.dotted}: `items` is for lists, but the value is {_json_type(value)}")
        schema["items"] = _items(ctx, key, items)
    for name, hint in hints.items():
        if name in ("properties", "patternProperties") and isinstance(hint, dict):
            schema[name] = {k: _hint_schema(ctx, key, v) for k, v in hint.items()}
        elif name in ("not", "if", "then", "else", "contains", "additionalItems", "propertyNames") \
                and isinstance(hint, dict):
            schema[name] = _hint_schema(ctx, key, hint)
        elif name in ("allOf", "anyOf", "oneOf") and isinstance(hint, list):
            schema[name] = [_hint_schema(ctx, key, h) for h in hint]
        else:
            schema[name] = hint
    if nullable:
        schema = _nullable(schema)
    if key.description and "description" not in hints:
        schema["description"] = key.description
    if "default" not in schema and not (isinstance(value, dict) and "properties" in schema) and value is not None:
        schema["default"] = value
    return _wrap_ref(schema)


def _items(ctx: _Context, key: Key, items: Any) -> dict[str, Any]:
    if isinstance(items, str):
        if items not in JSON_TYPES:
            ctx.problem(key.hint_line, f"{key.dotted}: `items: {items}` is not a JSON type "
                                       f"({', '.join(JSON_TYPES)}); or give a mapping like {{type: string}}")
            return {}
        return {"type": items}
    if isinstance(items, dict):
        return _hint_schema(ctx, key, items)
    ctx.problem(key.hint_line, f"{key.dotted}: `items` takes a type name or a mapping, got {items!r}")
    return {}


def _hint_schema(ctx: _Context, key: Key, hint: Any) -> Any:
    """A schema written inside an annotation (items, additionalProperties...), extensions expanded."""
    if not isinstance(hint, dict):
        return hint
    hint = dict(hint)
    out: dict[str, Any] = {}
    if "k8s" in hint:
        ref = ctx.k8s_ref(hint.pop("k8s"), key)
        if ref:
            out["$ref"] = ref
    if "$ref" in hint:
        out["$ref"] = _local_ref(ctx, key, hint.pop("$ref"))
    if "like" in hint:
        out.update(_like(ctx, key, hint.pop("like")))
    if hint.pop("freeform", False):
        out.update({"type": "object", "additionalProperties": True})
    nullable = hint.pop("nullable", False)
    if "items" in hint:
        out["items"] = _items(ctx, key, hint.pop("items"))
    for name, value in hint.items():
        if name not in KEYWORDS:
            _unknown_hint(ctx, key, name)
        elif name in ("properties", "patternProperties") and isinstance(value, dict):
            out[name] = {k: _hint_schema(ctx, key, v) for k, v in value.items()}
        elif name == "additionalProperties" and isinstance(value, dict):
            out[name] = _hint_schema(ctx, key, value)
        elif name in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[name] = [_hint_schema(ctx, key, v) for v in value]
        else:
            out[name] = value
    if nullable:
        out = _nullable(out)
    return _wrap_ref(out)


def _like(ctx: _Context, key: Key, dotted: Any) -> dict[str, Any]:
    """The schema of another key of this chart's values, every key optional and without defaults.

    For maps of homogeneous entries that override a defaults block, e.g. on `services.microservices`:
    `# @schema {additionalProperties: {like: services.defaults}}`, so a typo inside an entry is refused too.
    """
    target = ctx.values.find(tuple(str(dotted).split("."))) if isinstance(dotted, str) and dotted else None
    if target is None:
        ctx.problem(key.hint_line, f"{key.dotted}: `like: {dotted}` names no key of this values.yaml "
                                   "(give a dotted path such as services.defaults)")
        return {}
    if target is key or key.dotted.startswith(target.dotted + "."):
        ctx.problem(key.hint_line, f"{key.dotted}: `like: {dotted}` cannot name the key itself or a parent")
        return {}
    return _optional(_key(ctx, target))


def _optional(schema: Any) -> Any:
    """A copy of a schema with every `default`, `description` and `required` removed, recursively."""
    if isinstance(schema, list):
        return [_optional(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for name, value in schema.items():
        if name in ("default", "required", "description"):
            continue
        if name in ("properties", "patternProperties") and isinstance(value, dict):
            out[name] = {k: _optional(v) for k, v in value.items()}
        else:
            out[name] = _optional(value) if isinstance(value, (dict, list)) else value
    return out


def _local_ref(ctx: _Context, key: Key, ref: Any) -> str | None:
    prefix = "#/definitions/"
    if isinstance(ref, str) and ref.startswith(prefix):
        return ctx.k8s_ref(ref[len(prefix):], key)
    ctx.problem(key.hint_line, f"{key.dotted}: `$ref: {ref}` must be #/definitions/<Kubernetes definition> "
                               "(nothing is fetched at install time); `k8s: <definition>` says the same")
    return None


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema or "type" not in schema:
        if "$ref" in schema:
            ref = {"$ref": schema.pop("$ref")}
            return {"anyOf": [ref, {"type": "null"}], **schema}
        return schema  # no type constraint: null is already accepted
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "null" not in types:
        schema["type"] = [*types, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _wrap_ref(schema: dict[str, Any]) -> dict[str, Any]:
    # Draft-07 ignores the siblings of $ref: keep description and default next to an allOf instead.
    if "$ref" in schema and len(schema) > 1:
        ref = schema.pop("$ref")
        return {"allOf": [{"$ref": ref}], **schema}
    return schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_hints(ctx: _Context, key: Key, hints: dict[str, Any]) -> bool:
    ok = True
    for name, value in hints.items():
        if name not in KEYWORDS and name not in EXTENSIONS:
            _unknown_hint(ctx, key, name)
            ok = False
        elif name == "type":
            types = value if isinstance(value, list) else [value]
            bad = [t for t in types if t not in JSON_TYPES]
            if bad or not types:
                ctx.problem(key.hint_line, f"{key.dotted}: `type: {value}` is not a JSON type "
                                           f"(one or a list of {', '.join(JSON_TYPES)})")
                ok = False
        elif name in ("freeform", "nullable") and not isinstance(value, bool):
            ctx.problem(key.hint_line, f"{key.dotted}: `{name}` takes true or false, got {value!r}")
            ok = False
        elif name == "required" and not (isinstance(value, bool) or
                                          (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            ctx.problem(key.hint_line, f"{key.dotted}: `required` takes true (this key must be set) or a list "
                                       f"of child key names, got {value!r}")
            ok = False
        elif name == "enum" and not (isinstance(value, list) and value):
            ctx.problem(key.hint_line, f"{key.dotted}: `enum` takes a non-empty list, got {value!r}")
            ok = False
        elif name in NUMERIC and (isinstance(value, bool) or not isinstance(value, (int, float))):
            ctx.problem(key.hint_line, f"{key.dotted}: `{name}` takes a number, got {value!r}")
            ok = False
        elif name in COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            ctx.problem(key.hint_line, f"{key.dotted}: `{name}` takes a non-negative integer, got {value!r}")
            ok = False
        elif name == "pattern":
            try:
                re.compile(str(value))
            except re.error as exc:
                ctx.problem(key.hint_line, f"{key.dotted}: `pattern` is not a valid regular expression: {exc}")
                ok = False
    return ok


def _unknown_hint(ctx: _Context, key: Key, name: str) -> None:
    close = difflib.get_close_matches(str(name), sorted(KEYWORDS | EXTENSIONS), n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else " (see docs/values-annotations.md)"
    ctx.problem(key.hint_line, f"{key.dotted}: unknown @schema key `{name}`{hint}")


def _self_check(ctx: _Context, schema: dict[str, Any]) -> None:
    """values.yaml's own defaults must pass the generated schema (Helm checks them at every install)."""
    from tools.schema import quickcheck

    if quickcheck.valid(schema, ctx.values.data):  # sure they pass: spare importing and running jsonschema
        return
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(ctx.values.data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {})
            extra = sorted(k for k in error.instance if k not in known)
            if extra and ctx.values.find((*path, extra[0])) is not None:
                path = (*path, extra[0])
        line = None
        for n in range(len(path), 0, -1):
            found = ctx.values.find(path[:n])
            if found is not None:
                line = found.line
                break
        where = ".".join(path) or "(top level)"
        ctx.problem(line, f"the default of {where} does not match its schema: {_short(error)}")


def _short(error: Any) -> str:
    message = str(error.message)
    return message if len(message) <= 200 else message[:197] + "..."


def _sorted(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in sorted(problems, key=lambda p: (str(p.file), p.line or 0, p.message)):
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
