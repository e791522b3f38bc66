"""Failover benchmark on real daemons started from the charts' rendered configs.

Usage: python bench/failover.py redis|postgres [--runs N]
Each backend's script prints one JSON object as its last line (failover_s median, lost writes, kills).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BACKENDS = {"redis": "failover_redis", "postgres": "failover_postgres"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BACKENDS:
        print(f"usage: python bench/failover.py {{{'|'.join(BACKENDS)}}} [--runs N]", file=sys.stderr)
        return 2
    module = importlib.import_module(BACKENDS[argv[0]])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
