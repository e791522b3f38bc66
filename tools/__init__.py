"""Nova's chart tooling: helm (render), schema (values.schema.json), lint (policy), cluster (Kind)."""
