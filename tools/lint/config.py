"""The config file: ``.nova-lint.yaml`` or ``[tool.nova-lint]`` in pyproject.toml.

::

    fail-on: warning                 # lowest severity that makes the exit code 1 (error|warning|info)
    kube-versions: ["1.29", "1.37"]  # default when --kube-version is not given
    rules:
      startup-probe: {severity: info, slow-start-seconds: 60}   # severity: error|warning|info|off
      config-references: {external-secrets: ["nova-services/tls-*"]}
    suppress:
      - {rule: no-host-port, kind: DaemonSet, name: node-exporter, reason: "exporter binds the node port"}

Every mistake (unknown key, unknown rule, bad type, suppression without reason) is a ConfigError
naming the file and key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tools.lint.finding import Severity
from tools.lint.rules import REGISTRY
from tools.lint.suppress import UNSUPPRESSIBLE, ConfigSuppression

CONFIG_NAMES = (".nova-lint.yaml", ".nova-lint.yml")
TOP_KEYS = ("fail-on", "kube-versions", "rules", "suppress")
SUPPRESS_KEYS = ("rule", "reason", "kind", "namespace", "name", "container", "template")


class ConfigError(Exception):
    """The config file is wrong; ``str()`` is one line naming the file and key."""


@dataclass(frozen=True)
class Config:
    source: str | None = None
    fail_on: Severity = Severity.WARNING
    kube_versions: tuple[str, ...] = ()
    severities: Mapping[str, Severity | None] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    suppressions: tuple[ConfigSuppression, ...] = ()

    def severity(self, rule: ModuleType) -> Severity | None:
        """The rule's severity here, or None when the config turns it off."""
        return self.severities.get(rule.ID, rule.SEVERITY)

    def rule_options(self, rule: ModuleType) -> dict[str, Any]:
        return {**rule.OPTIONS, **self.options.get(rule.ID, {})}


def find_config(start: Path) -> Path | None:
    """The nearest .nova-lint.yaml, or pyproject.toml with [tool.nova-lint], from ``start`` upwards."""
    for directory in (start, *start.parents):
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return directory / name
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "nova-lint" in (_read_pyproject(pyproject).get("tool") or {}):
            return pyproject
    return None


def _read_pyproject(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read TOML: {exc}") from None


def load_config(path: Path | None) -> Config:
    """Parse and check a config file (None: defaults)."""
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    if path.name == "pyproject.toml":
        data = (_read_pyproject(path).get("tool") or {}).get("nova-lint")
        where = f"{path} [tool.nova-lint]"
    else:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
        where = str(path)
    return parse_config(data or {}, where)


def _fail(where: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {message}")


def parse_config(data: Any, where: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(where, str(key), f"unknown key; expected one of {', '.join(TOP_KEYS)}")
    try:
        fail_on = Severity.parse(data.get("fail-on", "warning"))
    except ValueError as exc:
        raise _fail(where, "fail-on", str(exc)) from None
    versions = data.get("kube-versions", [])
    if not isinstance(versions, list) or not all(isinstance(v, (str, int, float)) for v in versions):
        raise _fail(where, "kube-versions", "expected a list of versions such as [\"1.29\"]")
    severities, options = _parse_rules(data.get("rules") or {}, where)
    suppressions = _parse_suppressions(data.get("suppress") or [], where)
    return Config(where, fail_on, tuple(str(v) for v in versions), severities, options, suppressions)


def _parse_rules(rules: Any, where: str) -> tuple[dict[str, Severity | None], dict[str, dict[str, Any]]]:
    if not isinstance(rules, dict):
        raise _fail(where, "rules", "expected a mapping of rule id to settings")
    severities: dict[str, Severity | None] = {}
    options: dict[str, dict[str, Any]] = {}
    for rule_id, settings in rules.items():
        key = f"rules.{rule_id}"
        rule = REGISTRY.get(str(rule_id))
        if rule is None:
            raise _fail(where, key, "unknown rule (see docs/lint-rules.md or --list-rules)")
        if not isinstance(settings, dict):
            raise _fail(where, key, "expected a mapping such as {severity: warning}")
        for name, value in settings.items():
            if name == "severity":
                if str(value).lower() == "off" or value is False:
                    if rule.ID in UNSUPPRESSIBLE:
                        raise _fail(where, f"{key}.severity", "this rule cannot be turned off")
                    severities[rule.ID] = None
                    continue
                try:
                    severities[rule.ID] = Severity.parse(value)
                except ValueError as exc:
                    raise _fail(where, f"{key}.severity", f"{exc} or off") from None
            elif name in rule.OPTIONS:
                options.setdefault(rule.ID, {})[name] = _typed(value, rule.OPTIONS[name], where, f"{key}.{name}")
            else:
                allowed = ", ".join(["severity", *rule.OPTIONS]) or "severity"
                raise _fail(where, f"{key}.{name}", f"unknown setting; expected one of {allowed}")
        validate = getattr(rule, "validate_options", None)
        if validate is not None:
            try:
                validate({**rule.OPTIONS, **options.get(rule.ID, {})})
            except ValueError as exc:
                raise _fail(where, key, str(exc)) from None
    return severities, options


def _typed(value: Any, default: Any, where: str, key: str) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        raise _fail(where, key, f"expected a {expected.__name__} like {default!r}, got {value!r}")
    if expected is list and not all(isinstance(v, str) for v in value):
        raise _fail(where, key, "expected a list of strings")
    return value


def _parse_suppressions(entries: Any, where: str) -> tuple[ConfigSuppression, ...]:
    if not isinstance(entries, list):
        raise _fail(where, "suppress", "expected a list of {rule, reason, ...} entries")
    out = []
    for i, entry in enumerate(entries):
        key = f"suppress[{i}]"
        if not isinstance(entry, dict):
            raise _fail(where, key, "expected a mapping with rule and reason")
        for name in entry:
            if name not in SUPPRESS_KEYS:
                raise _fail(where, f"{key}.{name}", f"unknown key; expected one of {', '.join(SUPPRESS_KEYS)}")
        rule = str(entry.get("rule") or "")
        if rule not in REGISTRY:
            raise _fail(where, f"{key}.rule", f"unknown rule {rule!r}" if rule else "missing rule id")
        if rule in UNSUPPRESSIBLE:
            raise _fail(where, f"{key}.rule", f"{rule} cannot be suppressed")
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise _fail(where, f"{key}.reason", "a suppression needs a reason")
        out.append(ConfigSuppression(rule, reason, **{k: str(entry[k]) for k in SUPPRESS_KEYS[2:] if k in entry}))
    return tuple(out)
