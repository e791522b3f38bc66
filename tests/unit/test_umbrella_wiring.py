"""The umbrella's view of its subcharts: labels and selectors survive the dependency aliases."""

from __future__ import annotations

from tests.conftest import CHARTS, render
from tools import charts as chart_files


def _labels(o) -> dict:
    return (o.obj.get("metadata") or {}).get("labels") or {}


def test_subchart_objects_keep_their_chart_name_under_the_umbrella_aliases(helm_major: int) -> None:
    # Helm renames an aliased dependency's .Chart.Name to the alias (redis, postgres); the charts'
    # labels must not follow, or the umbrella's NetworkPolicies (name=nova-redis/nova-postgres) select nothing.
    objs = render(CHARTS / "nova", major=helm_major)
    names = {_labels(o).get("app.kubernetes.io/name") for o in objs}
    assert {"nova", "nova-redis", "nova-postgres"} <= names
    assert not names & {"redis", "postgres"}
    charts = {str(_labels(o).get("helm.sh/chart", "")).rsplit("-", 1)[0] for o in objs if _labels(o)}
    assert charts <= {"nova", "nova-redis", "nova-postgres"}, charts


def _required_anti_affinity(o) -> list:
    spec = o.obj["spec"]["template"]["spec"]
    return ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or []


def test_production_spreads_every_redis_postgres_and_etcd_pod_over_nodes(helm_major: int) -> None:
    objs = render(CHARTS / "nova", chart_files.profile_values("production"), major=helm_major)
    stateful = [o for o in objs if o.kind == "StatefulSet"]
    assert {o.name for o in stateful} >= {"redis", "postgres", "postgres-etcd"}  # the spec's names
    for o in stateful:
        terms = _required_anti_affinity(o)
        assert terms and terms[0]["topologyKey"] == "kubernetes.io/hostname", o.ref
        assert terms[0]["labelSelector"]["matchLabels"].items() <= o.obj["spec"]["selector"]["matchLabels"].items()
