"""Redis faults of bench/faults.py: charts/nova-redis with the production profile's redis block (profile and
example site overlay, tests/runtime/redis_harness.py production_values), on real daemons.

Each run starts a fresh cluster (3 pods of redis + Sentinel, HAProxy as ``<fullname>-master``) from the rendered
chart (tests/runtime/redis_harness.py), with pod source addresses when running as root (needed for the
partition), and runs one fault of ``redis_harness.FAULTS`` while

- a client writes through HAProxy (``CLIENT INFO; SET; WAIT 1 500`` per write: acknowledged = SET OK and a
  replica confirmed), every acknowledged write checked on the final master afterwards,
- a probe writes straight to every node every 50 ms (which node accepted writes, when),
- the -master endpoint (HAProxy's UP backends, and the role of each) is sampled every 100 ms.

FAULTS: name -> function(run_index) -> result dict (see bench/faults.py for the interface).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime import partition
from tests.runtime import redis_harness as rh


def _conf_value(h: rh.RedisHarness, key: str) -> str | None:
    for line in h.rendered_config("redis.conf").splitlines():
        parts = line.split()
        if parts[:1] == [key]:
            return parts[1]
    return None


def run(name: str, run_index: int) -> dict[str, Any]:
    """One run of fault ``name`` on a fresh production-values cluster."""
    missing = rh.missing_binaries()
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run `make setup` as root to install the test daemons")
    sources = partition.unavailable() is None
    with tempfile.TemporaryDirectory(prefix="nova-faults-redis-") as tmp:
        values = rh.production_values(Path(tmp))
        h = rh.started(lambda: rh.RedisHarness(values=[values], pod_sources=sources, workdir=Path(tmp)))
        try:
            result = rh.FAULTS[name](h, f"{name}:{run_index}")
            result.update({
                "down_after_ms": h.down_after_ms,
                "min_replicas_to_write": int(_conf_value(h, "min-replicas-to-write") or 0),
                "min_replicas_max_lag": int(_conf_value(h, "min-replicas-max-lag") or 0),
            })
        finally:
            h.close()
    events = result.pop("sentinel_events", [])
    print(f"redis {name} run {run_index + 1} Sentinel events:\n  " + "\n  ".join(events), file=sys.stderr, flush=True)
    return result


FAULTS: dict[str, Callable[[int], dict[str, Any]]] = {name: partial(run, name) for name in rh.FAULTS}
UNAVAILABLE: dict[str, str] = {}
if (why := partition.unavailable()) is not None:
    UNAVAILABLE["master-partition"] = why
if shutil.which("redis-server") is None:
    UNAVAILABLE.update({name: "redis-server is not installed (make setup)" for name in FAULTS})
