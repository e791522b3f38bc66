"""The explicit rule registry: every rule module, in the order findings are reported.

A rule module has ``ID`` (kebab-case), ``SEVERITY``, ``DESCRIPTION``, ``REMEDIATION``, ``OPTIONS``
(defaults of the settings the config file may change) and ``check(index, options)``, a generator
of findings. Its docstring shows a passing and a failing example; tests/lint/fixtures/<ID>/ has
pass*.yaml and fail*.yaml, and docs/lint-rules.md a section.
"""

from __future__ import annotations

from types import ModuleType

from tools.lint.rules import (
    config_references,
    drop_all_capabilities,
    hpa_sane,
    image_pinned,
    invalid_suppression,
    kube_schema,
    kube_schema_unavailable,
    liveness_probe,
    memory_limit,
    network_policy_coverage,
    no_host_namespaces,
    no_host_path,
    no_host_port,
    no_privilege_escalation,
    no_privileged,
    pdb_coverage,
    read_only_root_filesystem,
    readiness_probe,
    replica_spread,
    resilience_policy,
    resource_requests,
    run_as_non_root,
    seccomp_profile,
    secret_in_configmap,
    secret_in_env,
    service_account_token,
    service_selector,
    startup_probe,
    termination_grace_period,
)

RULES: tuple[ModuleType, ...] = (
    kube_schema,
    kube_schema_unavailable,
    invalid_suppression,
    run_as_non_root,
    drop_all_capabilities,
    no_privilege_escalation,
    read_only_root_filesystem,
    seccomp_profile,
    no_privileged,
    no_host_namespaces,
    no_host_path,
    no_host_port,
    resource_requests,
    memory_limit,
    readiness_probe,
    liveness_probe,
    startup_probe,
    image_pinned,
    pdb_coverage,
    replica_spread,
    service_account_token,
    network_policy_coverage,
    service_selector,
    hpa_sane,
    config_references,
    secret_in_configmap,
    secret_in_env,
    termination_grace_period,
    resilience_policy,
)

REGISTRY: dict[str, ModuleType] = {rule.ID: rule for rule in RULES}
