"""Package the application charts (dependencies bundled, Artifact Hub changes from CHANGELOG.md) and push
them to an OCI registry. ``python -m tools.package --help``; ``make package`` writes dist/."""
