#!/usr/bin/env python
"""Batch ingest and the judge's drain, before and after, interleaved in one sitting.

Runs `bench_ingest.py` of two source trees (for example `git archive <commit>` into /tmp,
and another commit or the working tree) against a database each, alternating A, B, A, B...
so that both see the same machine load. Each tree runs with PYTHONPATH pointing at itself,
so its `lantian` CLI, gunicorn and workers import its own code. The first round loads the
registry (`--phases registry`) into each database; then every round is `--phases batch
drain --runs 1`. It prints, per figure, the median over rounds for A and B and the ratio
B / A, by events/s and by CPU ms per event (app processes + PostgreSQL backends).

    .venv/bin/python tests/benchmarks/bench_ab_ingest.py --rounds 3 \\
        --a /tmp/before --a-database-url postgresql://postgres@127.0.0.1:5432/bench_a \\
        --b /tmp/after --b-database-url postgresql://postgres@127.0.0.1:5432/bench_b \\
        --redis-url redis://127.0.0.1:6379/11 -- --drain-n 5000 --drain-seconds 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PYTHON = sys.executable


def run_tree(tree: Path, database_url: str, redis_url: str, phases: list[str], out: Path,
             extra: list[str], reset: bool) -> dict[str, Any]:
    argv = [PYTHON, str(tree / "tests" / "benchmarks" / "bench_ingest.py"), "--database-url", database_url,
            "--redis-url", redis_url, "--phases", *phases, "--runs", "1", "--gunicorn-workers", "2",
            "--out", str(out), *extra]
    if reset:
        argv.append("--reset-schema")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    print(f"[{time.strftime('%H:%M:%S')}] {tree}: {' '.join(phases)}", flush=True)
    subprocess.run(argv, env=env, cwd=tree, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def figures(result: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """events/s and CPU ms per event (app groups + postgres backends) of each measured figure."""
    out: dict[str, tuple[float, float]] = {}
    for key, s in (result.get("drain") or {}).items():
        r = s["runs"][0]
        cpu = r["cpu_s"]
        app = sum(v for k, v in cpu.items() if k.startswith("worker_"))
        out[f"drain {key}"] = (r["events_per_s"], 1000 * (app + cpu.get("postgres", 0.0)) / max(r["judged"], 1))
    batch = result.get("batch")
    if batch:
        for key, s in batch.items():
            r = s["runs"][0]
            cpu = r.get("cpu_s") or {}
            app = sum(v for k, v in cpu.items() if k.startswith("lantian_"))
            events = r["events_per_s"] * r["elapsed_s"]
            cpu_ms = 1000 * (app + cpu.get("postgres", 0.0)) / events if events else 0.0
            out[f"batch {key}"] = (r["events_per_s"], cpu_ms)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, required=True, help="the 'before' source tree")
    p.add_argument("--b", type=Path, required=True, help="the 'after' source tree")
    p.add_argument("--a-database-url", required=True)
    p.add_argument("--b-database-url", required=True)
    p.add_argument("--redis-url", required=True, help="flushed by every run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_ab_ingest.json"))
    p.add_argument("extra", nargs="*", help="more options for bench_ingest.py (after --)")
    args = p.parse_args()
    trees = {"A": (args.a, args.a_database_url), "B": (args.b, args.b_database_url)}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {"A": {}, "B": {}}
    raw: dict[str, list[Any]] = {"A": [], "B": []}
    for name, (tree, url) in trees.items():
        run_tree(tree, url, args.redis_url, ["registry"], Path(f"/tmp/bench_ab_{name}_registry.json"), args.extra,
                 reset=True)
    for k in range(args.rounds):
        for name, (tree, url) in trees.items():
            result = run_tree(tree, url, args.redis_url, ["batch", "drain"], Path(f"/tmp/bench_ab_{name}_{k}.json"),
                              args.extra, reset=False)
            raw[name].append(result)
            for fig, value in figures(result).items():
                rows[name].setdefault(fig, []).append(value)
            args.out.write_text(json.dumps({"rows": rows, "raw": raw}, indent=1, default=str))
    print("| figure | A events/s | B events/s | B/A | A CPU ms/event | B CPU ms/event | B/A |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fig in rows["A"]:
        a, b = rows["A"][fig], rows["B"].get(fig, [])
        if not b:
            continue
        ra, rb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
        ca, cb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
        print(f"| {fig} | {ra:.1f} | {rb:.1f} | {rb / ra:.2f} | {ca:.2f} | {cb:.2f} | {cb / ca:.2f} |")


if __name__ == "__main__":
    main()
