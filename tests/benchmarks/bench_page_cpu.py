"""CPU and wall time per request of one API read, in-process (Flask test client), against an
existing database such as the one `bench_queries.py` generates.

The CPU figure is this process's (the web tier's) time only: it excludes the database
server, so it compares two versions of the code fairly on a shared machine when the runs
are interleaved (run this script for each version in turn, several rounds).

    .venv/bin/python tests/benchmarks/bench_page_cpu.py \
        --database-url postgresql://postgres@127.0.0.1:5432/bench --user police1 \
        --path '/api/v1/cases?status=open' --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--user", default="police1")
    parser.add_argument("--password", default="bench-password-123")  # bench_queries.py's
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    os.environ.update(LANTIAN_DATABASE_URL=args.database_url, LANTIAN_LOG_LEVEL="WARNING",
                      LANTIAN_SECRET_KEY="bench-secret-key-not-for-production")
    from lantian.app import create_app

    client = create_app().test_client()
    token = client.post("/api/v1/auth/token", json={"username": args.user, "password": args.password}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    for path in args.path:
        for _ in range(5):  # warm the statement caches and connections
            client.get(path, headers=headers)
        wall, cpu, size = [], [], 0
        for _ in range(args.requests):
            w0, c0 = time.perf_counter(), time.process_time()
            response = client.get(path, headers=headers)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            assert response.status_code == 200, response.status_code
            size = len(response.data)
        print(json.dumps({"path": path, "requests": args.requests, "bytes": size,
                          "cpu_ms_median": round(statistics.median(cpu) * 1000, 2),
                          "wall_ms_median": round(statistics.median(wall) * 1000, 2),
                          "wall_ms_p95": round(sorted(wall)[int(0.95 * len(wall)) - 1] * 1000, 2),
                          "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
