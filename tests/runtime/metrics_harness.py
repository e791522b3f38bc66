"""Scrape the charts' metrics endpoints on real daemons and evaluate their PromQL on a real Prometheus.

The Redis and PostgreSQL clusters come from tests/runtime/redis_harness.py and postgres_harness.py (used as they
are). This module adds what the monitoring tests need on top:

- :func:`metric_names`: the metric names a PromQL expression reads (a small tokenizer: identifiers outside label
  matchers, outside ``by/without/on/ignoring/group_left/group_right (...)`` lists, not called as functions, not
  keywords; strings, ranges and Grafana variables are skipped);
- :func:`rule_exprs` / :func:`dashboard_exprs`: the expressions of rendered PrometheusRules and of the chart's
  Grafana dashboards (files/dashboards/*.json);
- :class:`Exporter`: a Debian exporter (prometheus-redis-exporter, prometheus-postgres-exporter) started with
  the environment of the rendered exporter container, the container's ``127.0.0.1`` (the pod's own loopback)
  and wildcard listen addresses mapped to the pod's address of the run's block;
- :func:`scrape`: one scrape of a /metrics endpoint, as metric name -> samples;
- :class:`Prometheus`: Debian's prometheus on a free port of the block, its own temp dir, static scrape jobs
  labelled like the Prometheus Operator labels a ServiceMonitor's targets (namespace, job = Service name, pod),
  the rendered rules loaded; queried through its HTTP API. Stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import yaml

from tools.manifest import KubeObject

REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
PROMETHEUS = "/usr/bin/prometheus"

# PromQL words that are not metric names where they appear outside label matchers.
KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "atan2", "inf", "nan", "Inf", "NaN", "start", "end",
    # aggregation operators: `sum by (x) (...)` puts the modifier between the name and its parenthesis
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
})
LABEL_LIST_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
  | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:ms|s|m|h|d|w|y)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>\S)
""", re.VERBOSE)


def metric_names(expr: str) -> set[str]:
    """The metric names that PromQL ``expr`` selects (also the ``__name__="..."`` form)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    names: set[str] = set()
    depth_brace = 0
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = next(((k, t) for k, t in tokens[i + 1:]), (None, None))
        if kind == "punct" and text == "{":
            depth_brace += 1
        elif kind == "punct" and text == "}":
            depth_brace -= 1
        elif depth_brace:
            if kind == "ident" and text == "__name__" and nxt[1] == "=":
                value = tokens[i + 2][1] if i + 2 < len(tokens) else ""
                if tokens[i + 2][0] == "string":
                    names.add(value[1:-1])
        elif kind == "ident":
            if text in LABEL_LIST_WORDS and nxt[1] == "(":
                # skip the label list up to its closing parenthesis
                j = i + 2
                while j < len(tokens) and tokens[j][1] != ")":
                    j += 1
                i = j
            elif text == "offset":
                i += 1  # the duration
            elif text not in KEYWORDS and nxt[1] != "(":
                names.add(text)
        i += 1
    return names


def rule_exprs(objects: Iterable[KubeObject]) -> dict[str, str]:
    """alert (or record) name -> expression, from every PrometheusRule in ``objects``."""
    out: dict[str, str] = {}
    for o in objects:
        if o.kind == "PrometheusRule":
            for g in o.obj["spec"]["groups"]:
                for r in g["rules"]:
                    out[r.get("alert") or r["record"]] = str(r["expr"])
    return out


def rule_groups(objects: Iterable[KubeObject]) -> list[dict[str, Any]]:
    return [g for o in objects if o.kind == "PrometheusRule" for g in o.obj["spec"]["groups"]]


def dashboard_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs(path: Path) -> dict[str, str]:
    """"<file>#<panel id>/<refId>" -> PromQL of every target of a Grafana dashboard file."""
    dash = json.loads(path.read_text())
    out = {}
    for p in dashboard_panels(dash):
        for t in p.get("targets", []):
            out[f"{path.name}#{p['id']}/{t.get('refId', 'A')}"] = t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]+\)", q.strip())
            if m:
                out[f"{path.name}#var-{v['name']}"] = m.group(1)
    return out


def grafana_to_promql(expr: str, variables: Mapping[str, str]) -> str:
    """Substitute Grafana variables ($namespace, ${namespace}, $__rate_interval) to get plain PromQL."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return variables[name]
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, expr)


# ---- scraping -------------------------------------------------------------------------------------------


def parse_exposition(text: str) -> dict[str, list[str]]:
    """Prometheus text format -> metric (sample) name -> the sample lines."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
        if name:
            out.setdefault(name.group(), []).append(line)
    return out


def scrape(url: str, timeout: float = 5) -> dict[str, list[str]]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return parse_exposition(resp.read().decode(errors="replace"))


def wait_scrape(url: str, want: str, timeout: float = 30) -> dict[str, list[str]]:
    """Scrape ``url`` until metric ``want`` appears (an exporter's first scrape may precede its target)."""
    deadline = time.monotonic() + timeout
    last: Exception | dict[str, list[str]] | None = None
    while time.monotonic() < deadline:
        try:
            got = scrape(url)
            if want in got:
                return got
            last = got
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.2)
    detail = sorted(last)[:20] if isinstance(last, dict) else last
    raise TimeoutError(f"{url}: no {want} after {timeout:.0f}s (last: {detail})")


# ---- exporters ------------------------------------------------------------------------------------------


@dataclass
class Exporter:
    """One exporter process, started from a rendered container's env (secrets resolved by the caller)."""

    name: str
    binary: str
    env: dict[str, str]
    address: str
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/metrics"

    def start(self) -> Self:
        fh = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        try:
            self.popen = subprocess.Popen([self.binary], env={"PATH": "/usr/bin:/bin", **self.env}, stdout=fh,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            fh.close()
        return self

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def container_port(container: Mapping[str, Any], name: str) -> int:
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name))


def localize(env: Mapping[str, str], pod_ip: str) -> dict[str, str]:
    """A pod's view -> this host's: 127.0.0.1 (the pod's shared loopback) and ":port" / "0.0.0.0:port" listen
    addresses become the pod's own address of the run's block."""
    out = {}
    for k, v in env.items():
        v = v.replace("127.0.0.1", pod_ip).replace("0.0.0.0", pod_ip)
        out[k] = f"{pod_ip}{v}" if re.fullmatch(r":\d+", v) else v
    return out


# ---- Prometheus -----------------------------------------------------------------------------------------


@dataclass
class Target:
    """A scrape target as the Prometheus Operator labels it for a ServiceMonitor: job = the Service name."""

    namespace: str
    job: str
    pod: str
    address: str  # host:port
    path: str = "/metrics"


@dataclass
class Prometheus:
    """Debian's prometheus scraping ``targets`` every second and evaluating ``groups`` every second."""

    workdir: Path
    address: str
    port: int
    targets: Sequence[Target]
    groups: Sequence[dict[str, Any]]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def config(self) -> dict[str, Any]:
        jobs: dict[tuple[str, str], list[Target]] = {}
        for t in self.targets:
            jobs.setdefault((t.job, t.path), []).append(t)
        return {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {"job_name": job, "metrics_path": path,
                 "static_configs": [{"targets": [t.address], "labels": {"namespace": t.namespace, "pod": t.pod}}
                                    for t in ts]}
                for (job, path), ts in jobs.items()],
        }

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(self.config()))
        (self.workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": list(self.groups)}))
        log = open(self.workdir / "prometheus.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.procs.append(subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address={self.address}:{self.port}",
                 "--storage.tsdb.retention.time=1h", "--query.lookback-delta=5m"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        finally:
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, urllib.error.URLError), \
                    urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return self
            if self.procs[0].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"prometheus did not start: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def targets_health(self) -> dict[str, str]:
        """"job/pod" -> health (up, down, unknown) of every active target."""
        return {f"{t['labels']['job']}/{t['labels']['pod']}": t["health"] for t in self.api("targets")["activeTargets"]}

    def rules_health(self) -> dict[str, tuple[str, str]]:
        """rule name -> (health, lastError) after evaluation."""
        return {r["name"]: (r.get("health", ""), r.get("lastError", "")) for g in self.api("rules")["groups"]
                for r in g["rules"]}

    def evaluated_since(self, t: float) -> bool:
        """Every rule group has been evaluated after Unix time ``t``."""
        groups = self.api("rules")["groups"]
        return bool(groups) and all(
            datetime.fromisoformat(g["lastEvaluation"]).timestamp() > t for g in groups)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
