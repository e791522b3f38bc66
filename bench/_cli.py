"""The one rule every benchmark keeps: its last printed line is one JSON object, errors included."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable


def run(main: Callable[[], int], bench: str) -> None:
    """Run a benchmark's main(); on an error print it to stderr and `{"bench": ..., "error": ...}` last, exit 2."""
    try:
        code = main()
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        code, message = 2, exc.code if isinstance(exc.code, str) else f"exited with {exc.code}"
    except Exception as exc:  # noqa: BLE001 - a benchmark reports any failure as its result line
        code, message = 2, f"{type(exc).__name__}: {exc}"
    else:
        sys.exit(code)
    print(message, file=sys.stderr)
    print(json.dumps({"bench": bench, "error": message}), flush=True)
    sys.exit(code)
