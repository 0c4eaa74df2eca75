#!/usr/bin/env python
"""Black-smoke snapshots, measured: snapshots analysed per second by one worker process.

Service level, in this one process (cv2 limited to one thread, as in a worker): it

1. migrates the database and creates a black_smoke station;
2. renders a few synthetic 1080p scenes of known blackness (tests/unit/synthetic_smoke.py)
   and derives N distinct JPEGs from them (a few changed pixels each, so every upload has
   its own content address and nothing is shared through the page cache of one file);
3. takes each in through `remote_sensing.snapshots.receive` (verify by decoding, store the
   file, insert the row; timed: the upload's service cost without HTTP);
4. analyses every snapshot exactly as `workers.jobs.analyse_snapshot` does (a transaction
   per snapshot: read the row, read and decode the file, estimate, write the estimate),
   --runs times, resetting the estimates in between; figures are medians of the runs.

Prints a markdown row per figure, with the command that produced it.

    .venv/bin/python tests/benchmarks/bench_snapshots.py [--n 200] [--runs 3] \\
        [--database-url postgresql://postgres@127.0.0.1:5432/lantian_bench --reset-schema]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import text, update  # noqa: E402

from core import identity  # noqa: E402
from core.db import make_engine, make_sessionmaker  # noqa: E402
from core.settings import Settings  # noqa: E402
from remote_sensing import snapshots  # noqa: E402
from remote_sensing.models import RECEIVED, Snapshot  # noqa: E402
from tests.unit.synthetic_smoke import Scene, encode_jpeg, render  # noqa: E402

BLACKNESS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9)


def migrate(url: str, reset: bool) -> None:
    from alembic import command

    from lantian.cli import alembic_config

    if reset and url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    command.upgrade(alembic_config(url), "heads")


def jpegs(n: int, seed: int = 7) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bases = [render(Scene(width=1920, height=1080, blackness=b, noise_sigma=2.0, seed=i))
             for i, b in enumerate(BLACKNESS)]
    out = []
    for i in range(n):
        grey = bases[i % len(bases)].copy()
        ys, xs = rng.integers(0, 1080, 8), rng.integers(0, 1920, 8)
        grey[ys, xs] = rng.integers(0, 256, 8, dtype=np.uint8)
        out.append(encode_jpeg(grey, 90))
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--reset-schema", action="store_true", help="drop and re-create the PostgreSQL schema")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lantian-bench-smoke-") as tmp:
        report(args, Path(tmp))


def report(args: argparse.Namespace, work: Path) -> None:
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    settings = Settings(database_url=url, media_dir=str(work / "media"))
    migrate(url, args.reset_schema)
    engine = make_engine(url)
    # No queue hooks: the analysis is driven here, one snapshot per transaction.
    sessions = make_sessionmaker(engine)
    key_id, secret = identity.new_station_credentials()
    with sessions() as s, s.begin():
        station = identity.Station(code=f"BENCH-{key_id[:8]}", kind="black_smoke", region="320200",
                                   calibrated_until=date.today() + timedelta(days=365), key_id=key_id, secret=secret)
        s.add(station)
        s.flush()
        station_id = station.id

    images = jpegs(args.n)
    captured = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    ids = []
    started = time.perf_counter()
    for i, image in enumerate(images):
        meta = f'{{"event_id": "bench-{key_id[:8]}-{i}", "captured_at": "{captured}", "lane": 1, ' \
               '"plate": {"number": "苏B12345", "color": "yellow", "confidence": 0.95}}'
        with sessions() as s:
            received = snapshots.receive(s, station_id=station_id, region="320200", metadata=meta,
                                         images=[image], settings=settings)
        ids.append(received.id)
    receive_rate = len(ids) / (time.perf_counter() - started)

    rates, latencies = [], []
    levels: dict[int, int] = {}
    for _ in range(args.runs):
        with sessions() as s, s.begin():
            s.execute(update(Snapshot).where(Snapshot.id.in_(ids))
                      .values(analysed_at=None, estimated_level=None, estimate=None, status=RECEIVED))
        run_started = time.perf_counter()
        for pk in ids:
            t0 = time.perf_counter()
            with sessions() as s, s.begin():
                assert snapshots.analyse(s, pk, settings.media_dir, settings.policy.ringelmann_step)
            latencies.append(1000 * (time.perf_counter() - t0))
        rates.append(len(ids) / (time.perf_counter() - run_started))
    with sessions() as s:
        for level in s.scalars(Snapshot.__table__.select().with_only_columns(Snapshot.estimated_level)
                               .where(Snapshot.id.in_(ids))):
            levels[level] = levels.get(level, 0) + 1
    engine.dispose()

    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "tests/benchmarks/bench_snapshots.py",
                                                *sys.argv[1:]])
    print("| what | figure | command |")
    print("| --- | --- | --- |")
    print(f"| black-smoke analysis, one worker process (service level, N={args.n} synthetic 1920x1080 JPEGs, "
          f"one image each, {backend}) | {statistics.median(rates):.1f} snapshots/s (median of {args.runs}); "
          f"per snapshot p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms | "
          f"`{command}` |")
    print(f"| black-smoke upload service (verify by decoding, store the file, insert; no HTTP, {backend}) | "
          f"{receive_rate:.1f} snapshots/s | `{command}` |")
    print(f"\nestimated levels: {dict(sorted(levels.items()))}")


if __name__ == "__main__":
    main()
