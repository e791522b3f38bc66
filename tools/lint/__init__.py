"""tools.lint: Kubernetes schema and policy checks over rendered manifests.

    python -m tools.lint                      # every chart x profile x Kubernetes version
    python -m tools.lint --chart charts/nova -f values/production.yaml -f values/examples/production-site.yaml
    helm template ... | python -m tools.lint --manifests -

Data flow: inputs (helm renders via tools.helm, or manifest files) -> model.Index -> rules
(tools/lint/rules/, explicit registry) -> suppressions and severities (config, annotations)
-> formatters. Rule reference: docs/lint-rules.md.
"""
