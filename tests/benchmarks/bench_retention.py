"""Retention of one month at scale: the time of each statement, and how long readers of
rs_events wait while the kept partition is swapped in.

On a database bench_queries.py generated (`--generate-only` is enough), it retains the
N-th oldest month once (`remote_sensing.retention._retain_month`), printing each
statement's time, the time from the detach (which locks rs_events against every read and
write) to the end, and the latency of a reader of rs_events that queries every 20 ms
meanwhile. A month is retained once: run it with the next --month for another figure.

    .venv/bin/python tests/benchmarks/bench_retention.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/lantian_scale --month 0
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from core import partitions
from remote_sensing import retention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--month", type=int, default=0, help="which month, 0 the oldest")
    args = parser.parse_args()
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine, probe_engine = create_engine(url), create_engine(url)
    seen: list[tuple[str, float, float]] = []  # (statement, ms, ended at)

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        now = time.perf_counter()
        seen.append((" ".join(statement.split())[:90], (now - conn.info["t0"]) * 1000, now))

    waits: list[float] = []
    stop = threading.Event()

    def probe() -> None:  # a reader of rs_events, as a police query is
        with probe_engine.connect() as c:
            while not stop.is_set():
                t = time.perf_counter()
                c.execute(text("SELECT count(*) FROM rs_events WHERE id = 1 AND measured_at = now()"))
                c.commit()
                waits.append((time.perf_counter() - t) * 1000)
                time.sleep(0.02)

    with Session(engine) as s:
        month = sorted(p.month for p in partitions.partitions(s, retention.TABLE) if p.month is not None)[args.month]
        n = s.scalar(text(f"SELECT count(*) FROM {partitions.partition_name(retention.TABLE, month)}"))
        s.commit()
        seen.clear()
        reader = threading.Thread(target=probe)
        reader.start()
        t0 = time.perf_counter()
        ok = retention._retain_month(s, month)
        end = time.perf_counter()
        stop.set()
        reader.join()
    for statement, ms, _ in seen:
        print(f"{ms:10.1f} ms  {statement}")
    detached = next((t - ms / 1000 for statement, ms, t in seen if "DETACH" in statement), end)
    waits.sort()
    print(f"month {month}: {n:,} events, retained: {ok}, in {end - t0:.1f} s; "
          f"rs_events locked from the detach to the end: {end - detached:.2f} s")
    print(f"reader: {len(waits)} queries, p50 {waits[len(waits) // 2]:.1f} ms, max {waits[-1]:.0f} ms")


if __name__ == "__main__":
    main()
