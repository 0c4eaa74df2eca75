#!/usr/bin/env python
"""cProfile of the three hot paths in-process, with SQL statement counts: where the time goes.

Companion of bench_ingest.py (run it after that script, on the same bench database: it needs
the 100,000-vehicle registry). In one process, against PostgreSQL + Redis:

* single: N signed single-event POSTs through `app.test_client()`;
* bare: the same N bodies through the comparison app's `POST /events` (bench_ingest.py's
  "bare" endpoint), for an in-process ratio;
* batch: M batches of 500 through the batch endpoint;
* judge: K waiting events stored through the ingest service, then `workers.jobs.judge_pending()`
  (the worker's own function) with LANTIAN_JUDGE_BATCH_SIZE.

For each it prints wall time, statements and round trips per event, the time by package
(tottime) and the top functions. No server, no load generator: the figures are CPU of one
process plus its waits on PostgreSQL, not throughput.

    .venv/bin/python tests/benchmarks/profile_hotpaths.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/lantian_bench --redis-url redis://127.0.0.1:6379/11
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "benchmarks"))

from bench_ingest import BATCH_PATH, EVENTS_PATH, dumps, make_event  # noqa: E402

from core.identity import sign  # noqa: E402

BUCKETS = [("sqlalchemy", "sqlalchemy"), ("psycopg", "psycopg"), ("marshmallow", "marshmallow"),
           ("flask_smorest", "flask-smorest"), ("apispec", "flask-smorest"), ("webargs", "flask-smorest"),
           ("werkzeug", "flask/werkzeug"), ("flask", "flask/werkzeug"), ("redis", "redis/rq"), ("rq", "redis/rq"),
           ("json", "json"), ("lantian/main", "lantian")]


def bucket(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    for needle, name in BUCKETS:
        if f"/{needle}/" in filename or f"/{needle}." in filename:
            return name
    if str(REPO) in filename and "/.venv/" not in filename:
        return "lantian"
    return "other"


@dataclass
class Measured:
    prof: cProfile.Profile | None
    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def measure(cpu_only: bool) -> Iterator[Measured]:
    """Wall and process CPU time of the block, under cProfile unless `cpu_only`."""
    m = Measured(None if cpu_only else cProfile.Profile())
    wall, cpu = time.perf_counter(), time.process_time()
    if m.prof:
        m.prof.enable()
    yield m
    if m.prof:
        m.prof.disable()
    m.wall, m.cpu = time.perf_counter() - wall, time.process_time() - cpu


def report(title: str, m: Measured, n: int, stmts: Counter[str], top: int, dump: str | None = None) -> dict[str, Any]:
    summary = {"title": title, "events": n, "wall_s": round(m.wall, 3), "ms_per_event": round(1000 * m.wall / n, 3),
               "cpu_ms_per_event": round(1000 * m.cpu / n, 3),
               "statements_per_event": round(sum(stmts.values()) / n, 3)}
    print(f"\n=== {title}: {n} events in {m.wall:.2f} s wall = {1000 * m.wall / n:.3f} ms/event, "
          f"{1000 * m.cpu / n:.3f} ms CPU/event in this process ({'no profiler' if m.prof is None else 'profiler on'})")
    print(f"statements: {sum(stmts.values())} = {sum(stmts.values()) / n:.3f} per event")
    for kind, count in stmts.most_common(12):
        print(f"  {count:6d}  {kind}")
    if m.prof is None:
        return summary
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        m.prof.dump_stats(str(Path(dump) / f"{title.split()[0].strip(',')}.prof"))
    stats = pstats.Stats(m.prof)
    by_bucket: Counter[str] = Counter()
    waits = 0.0
    for (filename, _line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_bucket[bucket(filename)] += tt
        if func == "wait" and "psycopg" in filename and filename.endswith("connection.py"):
            waits = max(waits, ct)
    total = sum(by_bucket.values())
    print(f"psycopg waits (cumulative) {waits:.2f} s = {100 * waits / m.wall:.0f}% of wall")
    print("tottime by package:")
    for name, tt in by_bucket.most_common():
        print(f"  {100 * tt / total:5.1f}%  {1000 * tt / n:7.3f} ms/event  {name}")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return {**summary, "psycopg_wait_s": round(waits, 3),
            "by_package_ms_per_event": {k: round(1000 * v / n, 4) for k, v in by_bucket.items()}}


def statement_kind(sql: str) -> str:
    s = " ".join(sql.split())[:90]
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True)
    p.add_argument("--redis-url", required=True, help="a Redis database of its own: it is flushed")
    p.add_argument("--single", type=int, default=300)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--judge", type=int, default=3000)
    p.add_argument("--judge-batch-size", type=int, default=500)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--phases", nargs="+", default=["single", "batch", "judge"])
    p.add_argument("--dump", metavar="DIR", help="also write each profile as DIR/<phase>.prof (pstats format)")
    p.add_argument("--cpu-only", action="store_true",
                   help="no profiler: wall and this process's CPU time per event, for comparing two trees")
    a = p.parse_args()
    os.environ.update({"LANTIAN_DATABASE_URL": a.database_url, "LANTIAN_REDIS_URL": a.redis_url,
                       "LANTIAN_SECRET_KEY": "bench-secret-key-not-for-production",
                       "LANTIAN_JUDGE_BATCH_SIZE": str(a.judge_batch_size)})
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    tag = time.strftime("%H%M%S")
    out = subprocess.run([str(Path(sys.executable).parent / "lantian"), "stations", "create", "--code", f"PRF{tag}",
                          "--kind", "remote_sensing", "--region", "320200"], capture_output=True, text=True,
                         cwd=REPO, env=os.environ, check=True)
    station = json.loads(out.stdout.strip().splitlines()[-1])

    from redis import Redis
    from sqlalchemy import event, select, text

    from core import runtime
    from core.identity import Station
    from lantian.app import create_app
    from remote_sensing import ingest
    from workers import jobs

    Redis.from_url(a.redis_url).flushdb()
    app = create_app()
    rt = runtime.current()
    stmts: Counter[str] = Counter()

    @event.listens_for(rt.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, _params, _context, executemany):  # type: ignore[no-untyped-def]
        stmts[("executemany " if executemany else "") + statement_kind(statement)] += 1

    with rt.sessions() as s:
        station_id = s.scalar(select(Station.id).where(Station.key_id == station["key_id"]))
        waiting = s.scalar(text("SELECT count(*) FROM rs_events WHERE status = 'received'"))
    if waiting:
        print(f"note: {waiting} events were already waiting; the judge phase drains them too")
    client = app.test_client()
    rng = random.Random(tag)
    now = datetime.now(UTC)

    def headers(path: str, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        return {"Content-Type": "application/json", "X-Station-Key": station["key_id"], "X-Timestamp": ts,
                "X-Signature": sign(station["secret"], "POST", path, ts, body)}

    results = []
    if "single" in a.phases:
        bodies = [dumps(make_event(rng, f"prf-{tag}-s{n:06d}", now)) for n in range(a.single + 20)]
        for b in bodies[:20]:  # warm-up
            assert client.post(EVENTS_PATH, data=b, headers=headers(EVENTS_PATH, b)).status_code == 202
        reqs = [(b, headers(EVENTS_PATH, b)) for b in bodies[20:]]
        stmts.clear()
        with measure(a.cpu_only) as m:
            for b, h in reqs:
                r = client.post(EVENTS_PATH, data=b, headers=h)
                assert r.status_code == 202, r.get_data()[:300]
        results.append(report("single-event ingest (test client)", m, a.single, stmts, a.top, a.dump))
    if "bare" in a.phases:
        # The comparison endpoint of bench_ingest.py, through its own test client, with the
        # same bodies: the in-process counterpart of its "Lantian / bare" ratio.
        os.environ["BARE_REDIS_URL"] = a.redis_url
        from bare_app import app as bare

        bare_client = bare.test_client()
        bodies = [dumps(make_event(rng, f"prf-{tag}-x{n:06d}", now)) for n in range(a.single + 20)]
        for b in bodies[:20]:
            assert bare_client.post("/events", data=b, content_type="application/json").status_code == 202
        with measure(a.cpu_only) as m:
            for b in bodies[20:]:
                r = bare_client.post("/events", data=b, content_type="application/json")
                assert r.status_code == 202, r.get_data()[:300]
        results.append(report("bare endpoint (test client)", m, a.single, Counter(), a.top, a.dump))
    if "batch" in a.phases:
        batches = [dumps({"events": [make_event(rng, f"prf-{tag}-b{n:03d}-{k:03d}", now) for k in range(500)]})
                   for n in range(a.batches + 1)]
        assert client.post(BATCH_PATH, data=batches[0], headers=headers(BATCH_PATH, batches[0])).status_code == 200
        reqs = [(b, headers(BATCH_PATH, b)) for b in batches[1:]]
        stmts.clear()
        with measure(a.cpu_only) as m:
            for b, h in reqs:
                r = client.post(BATCH_PATH, data=b, headers=h)
                assert r.status_code == 200, r.get_data()[:300]
        results.append(report("batch ingest, 500 per batch (test client)", m, 500 * a.batches, stmts, a.top, a.dump))
    if "judge" in a.phases:
        with rt.sessions() as s:
            waiting = s.scalar(text("SELECT count(*) FROM rs_events WHERE status = 'received'"))
        need = max(0, a.judge - waiting)
        for start in range(0, need, 1000):
            bodies = [make_event(rng, f"prf-{tag}-j{start + k:07d}", now) for k in range(min(1000, need - start))]
            with rt.sessions() as s:
                ingest.ingest(ingest.SessionStore(s), station_id, bodies, 300)
        Redis.from_url(a.redis_url).flushdb()  # the drain runs here, not in a worker
        with rt.sessions() as s:
            waiting = s.scalar(text("SELECT count(*) FROM rs_events WHERE status = 'received'"))
        stmts.clear()
        with measure(a.cpu_only) as m:
            judged = jobs.judge_pending()
        results.append(report(f"judge_pending, batch {a.judge_batch_size}", m, judged or 1, stmts, a.top, a.dump))
    Redis.from_url(a.redis_url).flushdb()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
