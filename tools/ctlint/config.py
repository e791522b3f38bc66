"""ct.yaml: the chart-testing configuration, read with ct's defaults."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Every key ct accepts (chart-testing's configuration reference), so a typo is caught instead of ignored.
KNOWN_KEYS = frozenset({
    "remote", "target-branch", "since", "build-id", "lint-conf", "chart-yaml-schema",
    "validate-maintainers", "validate-chart-schema", "validate-yaml", "check-version-increment",
    "all", "process-all-charts", "charts", "chart-repos", "chart-dirs", "excluded-charts",
    "helm-extra-args", "helm-lint-extra-args", "helm-repo-extra-args", "helm-dependency-extra-args",
    "additional-commands", "debug", "upgrade", "skip-missing-values", "namespace", "release-label",
    "exclude-deprecated", "kubectl-timeout", "print-logs", "skip-clean-up", "use-helmignore",
    "github-groups", "release-name", "skip-schema-validation",
})


class ConfigError(Exception):
    """ct.yaml (or a file it names) is missing or invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class CtConfig:
    path: Path
    root: Path
    remote: str = "origin"
    target_branch: str = "main"
    chart_dirs: tuple[str, ...] = ("charts",)
    excluded_charts: tuple[str, ...] = ()
    check_version_increment: bool = True
    validate_chart_schema: bool = True
    validate_yaml: bool = True
    lint_conf: Path | None = None
    chart_yaml_schema: Path | None = None
    additional_commands: tuple[str, ...] = ()
    helm_lint_extra_args: tuple[str, ...] = field(default_factory=tuple)


def _str_list(data: dict[str, Any], key: str, path: Path, default: tuple[str, ...]) -> tuple[str, ...]:
    value = data.get(key, list(default))
    if isinstance(value, str):  # ct (viper) also takes a comma-separated string
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: '{key}' must be a list of strings")
    return tuple(value)


def _bool(data: dict[str, Any], key: str, path: Path, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: '{key}' must be true or false, not {value!r}")
    return value


def _file(data: dict[str, Any], key: str, path: Path, root: Path, default: str) -> Path | None:
    """The file named by ``key``, relative to the repository root; ct's default name when unset."""
    name = data.get(key)
    if name is None:
        candidate = root / default
        return candidate if candidate.is_file() else None
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: '{key}' must be a file name")
    candidate = (root / name) if not Path(name).is_absolute() else Path(name)
    if not candidate.is_file():
        raise ConfigError(f"{path}: '{key}' names {name}, which does not exist")
    return candidate


def load(path: Path, root: Path | None = None) -> CtConfig:
    """Read ct.yaml; relative paths in it are relative to ``root`` (default: the file's directory)."""
    root = root or path.parent
    if not path.is_file():
        raise ConfigError(f"{path}: no such file: pass --config or run from the repository root")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of ct options")
    unknown = sorted(set(map(str, data)) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}': check the spelling against chart-testing's options")
    for key in ("remote", "target-branch"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: '{key}' must be a string")
    lint_args = data.get("helm-lint-extra-args", "")
    if not isinstance(lint_args, str):
        raise ConfigError(f"{path}: 'helm-lint-extra-args' must be a string")
    return CtConfig(
        path=path,
        root=root,
        remote=data.get("remote", "origin"),
        target_branch=data.get("target-branch", "main"),
        chart_dirs=_str_list(data, "chart-dirs", path, ("charts",)),
        excluded_charts=_str_list(data, "excluded-charts", path, ()),
        check_version_increment=_bool(data, "check-version-increment", path, True),
        validate_chart_schema=_bool(data, "validate-chart-schema", path, True),
        validate_yaml=_bool(data, "validate-yaml", path, True),
        lint_conf=_file(data, "lint-conf", path, root, "lintconf.yaml"),
        chart_yaml_schema=_file(data, "chart-yaml-schema", path, root, "chart_schema.yaml"),
        additional_commands=_str_list(data, "additional-commands", path, ()),
        helm_lint_extra_args=tuple(shlex.split(lint_args)),
    )
