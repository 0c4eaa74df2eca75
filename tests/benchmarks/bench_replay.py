#!/usr/bin/env python
"""Late uploads, measured: the cost of judging a late event against 1,000 / 10,000 / 100,000
stored events of one vehicle, and of a 500-event late batch (the "Bounded replay cost" item
of "Evidence over time").

Self-contained and single-process: it builds the vehicle's history through the real judge in
measurement order (ingest, claim, judge, record, save: the worker's own calls, batch by
batch), then, at each size, uploads late events at random places in the history and times
the judge's transaction for them (claim to commit). The history alternates a pass and an
exceedance three hours apart, so a late event changes what it can change (its neighbours) and
the replay converges at the next stored item whatever the history's length. After each
size the judge's decisions are compared with a fold of the rule over the whole history.

    .venv/bin/python tests/benchmarks/bench_replay.py                 # SQLite in a temp dir
    .venv/bin/python tests/benchmarks/bench_replay.py --database-url postgresql://postgres@127.0.0.1:5432/bench \\
        --reset-schema

Figures are medians of --runs runs (each on fresh late events); JSON goes to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import select, text  # noqa: E402

from core.db import make_engine, make_sessionmaker  # noqa: E402
from core.identity import Station  # noqa: E402
from core.registry import upsert_vehicles  # noqa: E402
from core.settings import Policy  # noqa: E402
from enforcement import violations  # noqa: E402
from remote_sensing import ingest, judgement, limits, processing  # noqa: E402
from remote_sensing.models import Event, VerdictRevision  # noqa: E402
from tests.factories import event, vehicle  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
POLICY = Policy()
START = datetime(1990, 1, 1, 9, 0, tzinfo=TZ)
STEP = timedelta(hours=3)  # between stored measurements: more than the minimum gap
PLATE = "苏B12345"
HIGH, LOW = {"no_ppm": 1700}, {"no_ppm": 500}


class Bench:
    def __init__(self, url: str) -> None:
        self.sessions = make_sessionmaker(make_engine(url))
        self.stored = 0
        self.seq = 0
        with self.sessions() as s, s.begin():
            s.add(Station(code="RS001", kind="remote_sensing", region="320200", key_id="k1", secret="s",
                          calibrated_until=date(2100, 1, 1), calibrated_from=date(1980, 1, 1)))
            cycle = {"last_on": date(2026, 3, 10), "next_due_on": date(2027, 3, 10)}
            upsert_vehicles(s, [vehicle(PLATE, fuel_type="diesel", registered_on=date(2019, 5, 1),
                                        inspection_cycle=cycle)], today=date(2026, 3, 10), actor="bench")
        with self.sessions() as s:
            self.station_id = s.scalar(select(Station.id))

    def upload(self, points: list[tuple[datetime, dict[str, float]]]) -> None:
        bodies = []
        for at, measurements in points:
            self.seq += 1
            bodies.append(event(f"E{self.seq:09d}", at=at, measurements=measurements))
        for i in range(0, len(bodies), 1000):
            with self.sessions() as s:
                outcomes = ingest.ingest(ingest.SessionStore(s), self.station_id, bodies[i:i + 1000], 300)
            assert all(o.status == "received" for o in outcomes)

    def judge_all(self, batch_size: int = 500) -> list[tuple[float, float]]:
        """Drain what waits as the worker does; the wall and CPU seconds of each transaction."""
        times = []
        while True:
            t, cpu = time.perf_counter(), time.process_time()
            with self.sessions() as s, s.begin():
                claimed = processing.claim_pending(s, batch_size)
                if not claimed:
                    return times
                batch = processing.judge_events(s, claimed, POLICY, TZ)
                violations.record_remote_sensing(s, batch, POLICY, TZ)
                processing.save_verdicts(s, batch)
            times.append((time.perf_counter() - t, time.process_time() - cpu))

    def grow(self, size: int) -> float:
        """Extend the history in measurement order (pass, exceed, ... three hours apart) to `size` events."""
        t = time.perf_counter()
        for first in range(self.stored, size, 5000):
            n = min(5000, size - first)
            self.upload([(START + k * STEP, LOW if k % 2 == 0 else HIGH) for k in range(first, first + n)])
            self.judge_all()
        self.stored = size
        return time.perf_counter() - t

    def late(self, n: int, rng: random.Random) -> tuple[float, float]:
        """`n` late exceedances at random places of the history (midway between two stored
        measurements, or between a stored and an earlier late one), judged in one transaction."""
        slots = rng.sample(range(self.stored), n)
        self.upload([(START + k * STEP + timedelta(minutes=rng.randint(61, 119)), HIGH) for k in slots])
        times = self.judge_all(batch_size=max(500, n))
        assert len(times) == 1
        return times[0]

    def check(self) -> dict[str, int]:
        """The judge's current decisions equal a fold of the rule over the whole history."""
        with self.sessions() as s:
            rows = s.execute(select(Event.id, Event.measured_at, Event.payload, Event.limits, Event.exceeded,
                                    Event.judged, Event.warnings).where(Event.runs.is_not(None))
                             .order_by(Event.measured_at, Event.id)).all()
            revised = {r.event_id: (r.judged, r.warnings) for r in s.scalars(
                select(VerdictRevision).order_by(VerdictRevision.event_id, VerdictRevision.rev))}
        timeline = [judgement.Measurement(r.measured_at, r.id, frozenset(limits.measured_of(r.limits, r.payload[
            "measurements"])), frozenset(r.exceeded)) for r in rows]
        current = {r.id: revised.get(r.id, (r.judged, r.warnings)) for r in rows}
        folded = {st.item.id: (st.judgement.judged, st.judgement.warnings)
                  for st in judgement.replay(timeline, None, POLICY, TZ)}
        assert current == folded, "the judge's decisions differ from the fold in measurement order"
        return {"events": len(rows), "revisions": len(revised)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    p.add_argument("--reset-schema", action="store_true", help="PostgreSQL: DROP SCHEMA public CASCADE first")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=500, help="events in the late batch")
    p.add_argument("--out", default=str(REPO / "tests" / "benchmarks" / "bench_replay_results.json"))
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-replay-")
    url = a.database_url or f"sqlite:///{tmp}/replay.db"
    from alembic import command

    from lantian.cli import alembic_config

    if a.reset_schema and url.startswith("postgresql"):
        with make_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    command.upgrade(alembic_config(url), "heads")
    bench, rng, results = Bench(url), random.Random(10), []
    for size in sorted(a.sizes):
        grown = bench.grow(size)
        single = [bench.late(1, rng) for _ in range(a.runs)]
        batch = [bench.late(a.batch, rng) for _ in range(a.runs)]
        checked = bench.check()
        row = {"stored": size, "history_build_s": round(grown, 1),
               "late_1_ms": [round(w * 1000, 1) for w, _ in single],
               "late_1_median_ms": round(statistics.median(w for w, _ in single) * 1000, 1),
               "late_1_median_cpu_ms": round(statistics.median(c for _, c in single) * 1000, 1),
               f"late_{a.batch}_s": [round(w, 2) for w, _ in batch],
               f"late_{a.batch}_median_s": round(statistics.median(w for w, _ in batch), 2),
               f"late_{a.batch}_median_cpu_s": round(statistics.median(c for _, c in batch), 2), **checked}
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]
    for row in results:
        row["late_1_ratio_to_smallest"] = round(row["late_1_median_ms"] / base["late_1_median_ms"], 2)
        key = f"late_{a.batch}_median_s"
        row[f"late_{a.batch}_ratio_to_smallest"] = round(row[key] / base[key], 2)
    Path(a.out).write_text(json.dumps({"database": url.split(":")[0], "results": results}, indent=2))
    print(f"| stored events | 1 late event, wall (CPU), median of {a.runs} | {a.batch} late events in one batch, "
          f"wall (CPU) | ratio to {base['stored']:,} (wall) |")
    print("| --- | --- | --- | --- |")
    for row in results:
        print(f"| {row['stored']:,} | {row['late_1_median_ms']} ms ({row['late_1_median_cpu_ms']} ms) | "
              f"{row[f'late_{a.batch}_median_s']} s ({row[f'late_{a.batch}_median_cpu_s']} s) | "
              f"{row['late_1_ratio_to_smallest']} / {row[f'late_{a.batch}_ratio_to_smallest']} |")


if __name__ == "__main__":
    main()
