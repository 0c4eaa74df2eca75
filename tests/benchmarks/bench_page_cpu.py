"""CPU and wall time per request of one API read, in-process (Flask test client), against an
existing database such as the one `bench_queries.py` generates.

The CPU figure is this process's (the web tier's) time only: it excludes the database
server, so it compares two versions of the code fairly on a shared machine when the runs
are interleaved (run this script for each version in turn, several rounds).
`--against-claims-only` alternates, in this one process, rounds with the token check as the
app does it and rounds that trust the token's claims alone (bench_token_check.py's
`claims_only`): what reading the account on every request adds to each of these reads.

    .venv/bin/python tests/benchmarks/bench_page_cpu.py \
        --database-url postgresql://postgres@127.0.0.1:5432/bench --user police1 \
        --path '/api/v1/cases?status=open' --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--user", default="police1")
    parser.add_argument("--password", default="bench-password-123")  # bench_queries.py's
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--against-claims-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each mode (--against-claims-only)")
    args = parser.parse_args()
    os.environ.update(LANTIAN_DATABASE_URL=args.database_url, LANTIAN_LOG_LEVEL="WARNING",
                      LANTIAN_SECRET_KEY="bench-secret-key-not-for-production")
    from lantian.app import create_app

    client = create_app().test_client()
    token = client.post("/api/v1/auth/token", json={"username": args.user, "password": args.password}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    if args.against_claims_only:
        compare_claims_only(client, headers, args)
        return
    for path in args.path:
        for _ in range(5):  # warm the statement caches and connections
            client.get(path, headers=headers)
        wall, cpu, size = measure(client, headers, path, args.requests)
        print(json.dumps({"path": path, "requests": args.requests, "bytes": size,
                          "cpu_ms_median": round(statistics.median(cpu) * 1000, 2),
                          "wall_ms_median": round(statistics.median(wall) * 1000, 2),
                          "wall_ms_p95": round(sorted(wall)[int(0.95 * len(wall)) - 1] * 1000, 2),
                          "load": os.getloadavg()[0]}))


def measure(client: Any, headers: dict[str, str], path: str, n: int) -> tuple[list[float], list[float], int]:
    wall, cpu, size = [], [], 0
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        response = client.get(path, headers=headers)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        assert response.status_code == 200, response.status_code
        size = len(response.data)
    return wall, cpu, size


def compare_claims_only(client: Any, headers: dict[str, str], args: argparse.Namespace) -> None:
    """Check vs claims only, per path: medians over rounds of the per-request medians."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_token_check import claims_only

    from core import web

    modes = {"check": web._authenticate_person, "claims": claims_only}
    for path in args.path:
        rounds: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for i in range(args.rounds + 1):
            for mode, check in modes.items():
                web._authenticate_person = check
                wall, cpu, _ = measure(client, headers, path, args.requests)
                if i:  # the first round of each mode warms up
                    rounds[mode].append((statistics.median(cpu), statistics.median(wall)))
        web._authenticate_person = modes["check"]
        med = {m: [1000 * statistics.median(r[k] for r in rows) for k in (0, 1)] for m, rows in rounds.items()}
        print(json.dumps({"path": path, "cpu_ms": {m: round(v[0], 3) for m, v in med.items()},
                          "wall_ms": {m: round(v[1], 3) for m, v in med.items()},
                          "cpu_ratio": round(med["check"][0] / med["claims"][0], 3),
                          "wall_ratio": round(med["check"][1] / med["claims"][1], 3),
                          "load": os.getloadavg()[0]}))

if __name__ == "__main__":
    main()
