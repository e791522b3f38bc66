"""docs/deployment-guide.md's Zones table (issue 11.4) read against the objects values/production.yaml renders.

Each row of the table names components and what they do about ``topology.kubernetes.io/zone``; this module parses
the row's claims (``whenUnsatisfiable``, ``maxSkew``, ``minDomains``, "hard node anti-affinity", "no zone
spread") and checks them on every workload of the row, that every replicated workload of the production render
is in exactly one row, and that a row promising one pod per zone renders the constraints that make it so
(DoNotSchedule, maxSkew 1, minDomains = replicas): with fewer zones than pods the scheduler then leaves a pod
Pending instead of putting two in one zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CHARTS, ROOT, render
from tools import charts as chart_files
from tools.manifest import KubeObject

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
GUIDE = ROOT / "docs" / "deployment-guide.md"


def _component(name: str, *components: str) -> Callable[[KubeObject], bool]:
    def match(o: KubeObject) -> bool:
        labels = o.obj["metadata"]["labels"]
        return labels.get("app.kubernetes.io/name") == name and labels.get("app.kubernetes.io/component") in components
    return match


SERVICES = ("user-service", "auth-service", "search-service", "streaming-api", "messaging-service")
# The table's first cell (up to the first " (") -> the workloads it speaks of.
ROWS: dict[str, Callable[[KubeObject], bool]] = {
    "etcd": _component("nova-postgres", "etcd"),
    "PostgreSQL": _component("nova-postgres", "postgres"),
    "PgBouncer pooler": _component("nova-postgres", "pooler-rw", "pooler-ro"),
    "Redis + Sentinel": _component("nova-redis", "redis"),
    "Redis HAProxy, the services": lambda o: _component("nova-redis", "master-proxy")(o)
    or _component("nova", *SERVICES)(o),
}


def table() -> dict[str, tuple[str, str]]:
    """Component cell -> (zone spread cell, one zone lost cell) of the guide's Zones table."""
    text = GUIDE.read_text()
    start = text.index("| Component | Zone spread | One zone lost |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        line = line.strip()
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].split(" (")[0]] = (cells[1], cells[2])
    return rows


@pytest.fixture(scope="module")
def production() -> list[KubeObject]:
    return [o for o in render(CHARTS / "nova", chart_files.profile_values("production"), namespace="nova-services")
            if o.kind in ("Deployment", "StatefulSet")]


def zone_constraints(o: KubeObject) -> list[dict[str, Any]]:
    spec = o.obj["spec"]["template"]["spec"]
    return [c for c in spec.get("topologySpreadConstraints") or [] if c["topologyKey"] == ZONE]


def required_host_anti_affinity(o: KubeObject) -> bool:
    anti = (o.obj["spec"]["template"]["spec"].get("affinity") or {}).get("podAntiAffinity") or {}
    return any(t.get("topologyKey") == HOST for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution", []))


def test_the_table_has_a_row_for_every_replicated_workload_of_production(production: list[KubeObject]) -> None:
    assert set(table()) == set(ROWS), "the Zones table's rows changed: update ROWS here"
    for o in production:
        replicated = o.obj["spec"].get("replicas") is None or o.obj["spec"]["replicas"] > 1  # None: an HPA
        rows = [row for row, match in ROWS.items() if match(o)]
        assert len(rows) <= 1, f"{o.kind} {o.name} is in rows {rows}"
        assert rows or not replicated, f"{o.kind} {o.name}: the Zones table must say what it does about zones"
    for row, match in ROWS.items():
        assert any(match(o) for o in production), f"row {row!r} names nothing production renders"


@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_row_says_what_the_production_objects_do(production: list[KubeObject], row: str) -> None:
    spread, lost = table()[row]
    objects = [o for o in production if ROWS[row](o)]
    when = re.findall(r"`(DoNotSchedule|ScheduleAnyway)`", spread)
    skew = re.search(r"`maxSkew: (\d+)`", spread)
    min_domains = re.search(r"`minDomains: (\d+)`", spread)
    for o in objects:
        constraints = zone_constraints(o)
        if "no zone spread" in spread:
            assert constraints == [], f"{o.name}: the row says no zone spread"
            continue
        [c] = constraints
        assert c["labelSelector"]["matchLabels"] == o.obj["spec"]["selector"]["matchLabels"], o.name
        assert [c["whenUnsatisfiable"]] == when[:1], f"{o.name}: {c}"
        assert skew is None or c["maxSkew"] == int(skew.group(1)), f"{o.name}: {c}"
        assert c.get("minDomains") == (int(min_domains.group(1)) if min_domains else None), f"{o.name}: {c}"
    if "hard node anti-affinity" in spread:
        assert all(required_host_anti_affinity(o) for o in objects), row
    if "every member is in its own zone" in lost or "every pod is in its own zone" in lost:
        # 3 pods, maxSkew 1, DoNotSchedule, minDomains 3: a second pod in one zone would make the skew 2 (with
        # fewer than 3 zones the global minimum counts as 0), so the scheduler never allows it.
        for o in objects:
            [c] = zone_constraints(o)
            assert (c["whenUnsatisfiable"], c["maxSkew"], c.get("minDomains")) == (
                "DoNotSchedule", 1, o.obj["spec"]["replicas"]), f"{o.name}: {c}"
    if "not guaranteed" in lost:
        assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for o in objects for c in zone_constraints(o)), row
