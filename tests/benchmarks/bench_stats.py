#!/usr/bin/env python
"""`/stats/supervision` at scale: the median time of `stats.supervision`, the service the
endpoint calls, for an unscoped reader and a region-scoped one.

Run it on a database that bench_queries.py generated (`--generate-only`), migrated to head:

    .venv/bin/python tests/benchmarks/bench_stats.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/lantian_scale --month 2026-11 [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core.db import make_engine  # noqa: E402
from core.settings import Policy  # noqa: E402
from enforcement import stats  # noqa: E402
from remote_sensing.models import Event  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    month = date.fromisoformat(a.month + "-01")
    tz, policy = ZoneInfo("Asia/Shanghai"), Policy()
    with Session(make_engine(a.database_url)) as session:
        print(f"rs_events: {session.scalar(select(func.count()).select_from(Event)):,}")
        for label, scope in (("unscoped", None), ("scope 320200", "320200")):
            stats.supervision(session, month, None, scope, tz, policy)  # warm the cache
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                body = stats.supervision(session, month, None, scope, tz, policy)
                times.append(time.perf_counter() - t0)
            print(f"{label}: median {statistics.median(times):.3f} s over {a.runs} runs "
                  f"(min {min(times):.3f}, max {max(times):.3f}); quota {body['quota']['vehicles_tested']}, "
                  f"winter {body['winter']['vehicles_tested']}/{body['winter']['registered']}")


if __name__ == "__main__":
    main()
