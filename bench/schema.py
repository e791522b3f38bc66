"""Benchmark: `python -m tools.schema` versus bitnami's readme-generator-for-helm on one big values file.

Builds (deterministically) a chart under bench/.work/schema-chart whose values.yaml has >= 3,000 keys, each
annotated for both tools (`## @param` / `## @extra` for readme-generator, `# --` / `# @schema` for ours),
installs @bitnami/readme-generator-for-helm (pinned) from npm into bench/.work/npm when missing, then times

    python -m tools.schema bench/.work/schema-chart         (values.schema.json + README table)
    readme-generator --values values.yaml --schema OUT       (schema only)

alternating the two, several runs each, after one warm-up run of each. The last line printed is one JSON object
with the medians (seconds), `speedup` (readme-generator / nova) and how strict each output is.

With --profile, one generation is also timed phase by phase in-process (imports, reading values.yaml, building
the schema, its text, the README) and cProfile's top functions are printed.

Usage: python bench/schema.py [--runs N] [--groups G] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
CHART = WORK / "schema-chart"
NPM_DIR = WORK / "npm"
README_GENERATOR = "@bitnami/readme-generator-for-helm@2.7.2"
LEAVES_PER_GROUP = 30


def build_values(groups: int) -> tuple[str, int]:
    """A values.yaml with `groups` maps of 30 documented keys each (plus nested ones); returns (text, keys)."""
    out: list[str] = []
    keys = 0

    def key(indent: int, path: str, name: str, value: str, desc: str, schema: str = "",
            bitnami: str = "") -> None:
        nonlocal keys
        pad = " " * indent
        out.append(f"{pad}## @param {path} {bitnami}{desc}".replace("  ", " "))
        out.append(f"{pad}# -- {desc}")
        if schema:
            out.append(f"{pad}# @schema {schema}")
        out.append(f"{pad}{name}: {value}")
        keys += 1

    def parent(indent: int, path: str, name: str, desc: str) -> None:
        nonlocal keys
        pad = " " * indent
        out.append(f"{pad}## @extra {path} {desc}")
        out.append(f"{pad}# -- {desc}")
        out.append(f"{pad}{name}:")
        keys += 1

    for g in range(groups):
        out.append(f"## @section Component {g}")
        gname = f"component{g}"
        parent(0, gname, gname, f"Settings of component {g}.")
        for j in range(LEAVES_PER_GROUP):
            path = f"{gname}.key{j}"
            kind = j % 10
            if kind == 0:
                key(2, path, f"key{j}", str(j + 1), f"Replicas of part {j}.", "{minimum: 0, maximum: 100}")
            elif kind == 1:
                key(2, path, f"key{j}", f"value-{j}", f"Name of part {j}.")
            elif kind == 2:
                key(2, path, f"key{j}", "true", f"Turn part {j} on.")
            elif kind == 3:
                key(2, path, f"key{j}", "info", f"Log level of part {j}.", "{enum: [debug, info, warn, error]}")
            elif kind == 4:
                key(2, path, f"key{j}", "[]", f"Extra arguments of part {j}.", "{items: string}",
                    "[array] ")
            elif kind == 5:
                key(2, path, f"key{j}", "{}", f"Extra annotations of part {j}.", "{freeform: true}",
                    "[object] ")
            elif kind == 6:
                key(2, path, f"key{j}", '""', f"Existing Secret of part {j}; empty to generate one.",
                    "{nullable: true}", "[nullable] ")
            elif kind == 7:
                key(2, path, f"key{j}", "0.5", f"Ratio of part {j}.", "{minimum: 0, maximum: 1}")
            elif kind == 8 and g % 10 == 0:
                key(2, path, f"key{j}", "{}", f"Resources of part {j}.",
                    "{k8s: io.k8s.api.core.v1.ResourceRequirements}", "[object] ")
            else:
                parent(2, path, f"key{j}", f"Port settings of part {j}.")
                key(4, f"{path}.port", "port", str(8000 + j), f"Port of part {j}.", "{minimum: 1, maximum: 65535}")
                key(4, f"{path}.name", "name", f"http-{j}", f"Port name of part {j}.")
    return "\n".join(out) + "\n", keys


def ensure_readme_generator() -> Path:
    binary = NPM_DIR / "node_modules" / ".bin" / "readme-generator"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm not found: install nodejs/npm to run this benchmark")
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_DIR), README_GENERATOR],
                       check=True, stdout=subprocess.DEVNULL)
    return binary


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def strictness(schema: dict[str, Any]) -> dict[str, int]:
    counts = {"closed_objects": 0, "enums": 0, "bounds": 0, "descriptions": 0}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("additionalProperties") is False:
                counts["closed_objects"] += 1
            counts["enums"] += "enum" in node
            counts["bounds"] += any(k in node for k in ("minimum", "maximum"))
            counts["descriptions"] += isinstance(node.get("description"), str)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema.get("properties", {}))
    return counts


def profile(chart: Path, top: int = 12) -> dict[str, float]:
    """Wall-clock time of each phase of one generation (in this process), then cProfile's top functions."""
    import cProfile
    import io
    import pstats

    sys.path.insert(0, str(ROOT))
    clock = time.perf_counter
    start = clock()
    from tools.schema import build, readme, values
    from tools.schema import chart as chart_mod

    phases = {"import": clock() - start}

    def run() -> None:
        mark = clock()
        meta = chart_mod.read(chart)
        loaded = values.load(meta.values_file)
        phases["read_values"] = clock() - mark
        mark = clock()
        built = build.build(meta, {})  # reads values.yaml again: subtract read_values for the schema alone
        phases["schema"] = clock() - mark - phases["read_values"]
        mark = clock()
        built.text()
        phases["schema_text"] = clock() - mark
        mark = clock()
        readme.render(built, readme.read(meta.readme_file))
        phases["readme"] = clock() - mark
        del loaded

    run()
    timed_phases = dict(phases)  # the profiled run below is slower: keep the plain run's times
    profiler = cProfile.Profile()
    profiler.runcall(run)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print("cProfile of one generation (in-process, after a first run), by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    print("phases (s): " + ", ".join(f"{k} {v:.3f}" for k, v in timed_phases.items()))
    return {k: round(v, 4) for k, v in timed_phases.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each tool (default 7)")
    parser.add_argument("--groups", type=int, default=100, help="top-level maps of ~31 keys (default 100)")
    parser.add_argument("--profile", action="store_true",
                        help="also time each phase in-process and print cProfile's top functions")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.groups < 1:
        raise SystemExit("--runs and --groups must be at least 1")

    text, keys = build_values(args.groups)
    CHART.mkdir(parents=True, exist_ok=True)
    (CHART / "Chart.yaml").write_text("apiVersion: v2\nname: schema-bench\nversion: 0.1.0\n"
                                      "description: Generated by bench/schema.py.\n")
    (CHART / "values.yaml").write_text(text)
    for stale in ("README.md", "values.schema.json"):
        (CHART / stale).unlink(missing_ok=True)
    readme_out = WORK / "readme-generator.schema.json"
    generator = ensure_readme_generator()

    nova_cmd = [sys.executable, "-m", "tools.schema", str(CHART)]
    readme_cmd = [str(generator), "--values", str(CHART / "values.yaml"), "--schema", str(readme_out)]
    # Python as a user runs it: the first run writes the .pyc files, later runs read them (a CI or sandbox
    # environment may set PYTHONDONTWRITEBYTECODE, which would compile every module on every run).
    nova_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    timed(nova_cmd, ROOT, nova_env), timed(readme_cmd, ROOT)  # warm-up: page cache, pyc files
    nova_runs: list[float] = []
    readme_runs: list[float] = []
    for i in range(args.runs):
        pair = [(nova_cmd, nova_runs, nova_env), (readme_cmd, readme_runs, None)]
        for cmd, runs, env in (pair if i % 2 == 0 else pair[::-1]):
            runs.append(timed(cmd, ROOT, env))
    nova_s = statistics.median(nova_runs)
    readme_s = statistics.median(readme_runs)
    nova_schema = json.loads((CHART / "values.schema.json").read_text())
    readme_schema = json.loads(readme_out.read_text())
    print(f"values file: {CHART / 'values.yaml'} ({keys} keys, {len(text.splitlines())} lines)")
    print(f"nova runs (s):             {' '.join(f'{t:.3f}' for t in nova_runs)}")
    print(f"readme-generator runs (s): {' '.join(f'{t:.3f}' for t in readme_runs)}")
    result = {
        "keys": keys,
        "runs": args.runs,
        "nova_s": round(nova_s, 4),
        "readme_generator_s": round(readme_s, 4),
        "speedup": round(readme_s / nova_s, 2),
        "nova_outputs": ["values.schema.json", "README.md"],
        "readme_generator_outputs": ["schema"],
        "nova_strictness": strictness(nova_schema),
        "readme_generator_strictness": strictness(readme_schema),
        "readme_generator": README_GENERATOR,
    }
    if args.profile:
        result["nova_phases_s"] = profile(CHART)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _cli import run

    run(main, "schema")
