"""``python -m tools.lint``: see tools/lint/cli.py and docs/lint-rules.md."""

from __future__ import annotations

import sys

from tools.lint.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
