"""A container's environment as the kubelet builds it: envFrom first, then env, with the values of
ConfigMaps and Secrets found in the same render."""

from __future__ import annotations

from dataclasses import dataclass

from tools.lint.model import Container, Index, Workload, decode_secret
from tools.lint.rules._base import listing, mapping


@dataclass(frozen=True, slots=True)
class EnvValue:
    """One env var: its value (None when the linter cannot see it), where it comes from, and its JSON path."""

    value: str | None
    origin: str
    path: str


def resolve_env(index: Index, w: Workload, c: Container) -> tuple[dict[str, EnvValue], list[str]]:
    """(variables, opaque sources): opaque sources are envFrom objects not in the render (keys unknown)."""
    env: dict[str, EnvValue] = {}
    opaque: list[str] = []
    for i, env_from in enumerate(listing(c.spec.get("envFrom"))):
        env_from = mapping(env_from)
        prefix = str(env_from.get("prefix") or "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field not in env_from:
                continue
            name = str(mapping(env_from[field]).get("name"))
            found = index.get(kind, w.namespace, name)
            path = f"{c.path}.envFrom[{i}].{field}"
            if found is None:
                opaque.append(f"{kind} {name}")
                continue
            data = decode_secret(found) if kind == "Secret" else {
                str(k): None if v is None else str(v) for k, v in mapping(found.obj.get("data")).items()}
            for key, value in data.items():
                env[prefix + key] = EnvValue(value, f"{kind} {name}", path)
    for i, item in enumerate(listing(c.spec.get("env"))):
        item = mapping(item)
        name = str(item.get("name", ""))
        path = f"{c.path}.env[{i}]"
        if "value" in item:
            env[name] = EnvValue(None if item["value"] is None else str(item["value"]), "env", f"{path}.value")
            continue
        source = mapping(item.get("valueFrom"))
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if field in source:
                ref = mapping(source[field])
                ref_name, key = str(ref.get("name")), str(ref.get("key"))
                found = index.get(kind, w.namespace, ref_name)
                value = None
                if found is not None:
                    data = decode_secret(found) if kind == "Secret" else mapping(found.obj.get("data"))
                    raw = data.get(key)
                    value = None if raw is None else str(raw)
                env[name] = EnvValue(value, f"{kind} {ref_name} key {key}", f"{path}.valueFrom.{field}")
                break
        else:
            if source:
                env[name] = EnvValue(None, "a field reference", f"{path}.valueFrom")
            elif name:
                env[name] = EnvValue("", "env", path)
    return env, opaque
