#!/usr/bin/env python
"""What reading a JSON column costs: the long-integer guard of `core.db.json_loads` against
orjson's own parse, on the evidence of a five-event run as stored (the weight of one violation
in a case listing; a page of 50 cases reads about 290 such events).

    .venv/bin/python tests/benchmarks/bench_json_guard.py
"""

from __future__ import annotations

import re
import statistics
import timeit
from collections.abc import Callable

import orjson

from core.db import json_loads

EVENT = {
    "measured_at": "2026-11-20T08:12:33.123456+00:00",
    "station": {"code": "RS001", "name": "锡山路站", "location": "锡山大道与团结路口",
                "lat": 31.5912345, "lon": 120.301234},
    "lane": 2, "speed_kmh": 43.2, "acceleration_ms2": 0.31, "vsp_kw_t": 7.123456789,
    "measurements": {"co_pct": 0.51234, "hc_ppm": 120.5, "no_ppm": 1800.25, "opacity_k": 1.2345},
    "conditions": {"temp_c": 12.3, "humidity_pct": 55.1, "wind_ms": 2.1},
    "plate": "苏B12345", "match": "exact", "limits": {"co_pct": 0.5, "hc_ppm": 160, "no_ppm": 1500},
}
# The guard as it was before (a regular expression for a number of 19 digits or more).
REGEX_GUARD = re.compile(r"(?:^|[\[:,\s])-?\d{19}")


def median_us(fn: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    text = orjson.dumps([EVENT] * 5).decode()
    figures = {
        "regex guard alone": median_us(lambda: REGEX_GUARD.search(text)),
        "orjson.loads alone": median_us(lambda: orjson.loads(text)),
        "json_loads (guard + orjson)": median_us(lambda: json_loads(text)),
    }
    print(f"{len(text.encode())} bytes of evidence (5 events), median of 7 x 2,000 calls")
    for name, us in figures.items():
        print(f"  {name:30} {us:7.1f} us")


if __name__ == "__main__":
    main()
