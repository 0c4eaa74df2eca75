#!/usr/bin/env python
"""CPU of one 500-event batch upload in-process (Flask's test client), with a profile.

For comparing two source trees on databases already migrated by them (for example those of
`bench_ab_ingest.py`): run it once per tree, with PYTHONPATH and the first argument at
that tree. Jobs are queued to the given Redis database and not run, so only the web side is
measured. It creates a station, posts one warm-up batch, then 5 batches of fresh events and
prints the CPU per batch and the 35 costliest calls.

    PYTHONPATH=/tmp/before .venv/bin/python tests/benchmarks/profile_batch_ingest.py /tmp/before \\
        postgresql://postgres@127.0.0.1:5432/bench_a redis://127.0.0.1:6379/11
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from datetime import datetime, timedelta

sys.path.insert(0, sys.argv[1])

from core.identity import sign  # noqa: E402
from core.settings import Settings  # noqa: E402
from lantian.app import create_app  # noqa: E402
from lantian.cli import cli  # noqa: E402
from tests.factories import CST, event  # noqa: E402

PATH = "/api/v1/remote-sensing/events/batch"


def main() -> None:
    url, redis_url = sys.argv[2], sys.argv[3]
    options = dict(database_url=url, redis_url=redis_url, secret_key="bench-secret-key-at-least-32-bytes-long")
    try:
        app = create_app(Settings(**options, station_key_encryption_key="bench-station-key-encryption-key"))
    except Exception:  # a tree from before station secrets were sealed has no such setting
        app = create_app(Settings(**options))
    code = f"RSP{int(time.time()) % 100000}"
    created = app.test_cli_runner().invoke(cli, ["stations", "create", "--code", code, "--kind", "remote_sensing",
                                                 "--region", "320200"])
    cred = json.loads(created.output.strip().splitlines()[-1])
    client = app.test_client()
    now = datetime.now(CST) - timedelta(hours=1)

    def post(k: int) -> None:
        body = json.dumps({"events": [event(f"b{k}-{i}", at=now - timedelta(seconds=i),
                                            plate=f"苏B{10000 + (i * 37 + k * 11) % 90000}")
                                      for i in range(500)]}).encode()
        ts = str(int(time.time()))
        headers = {"X-Station-Key": cred["key_id"], "X-Timestamp": ts, "Content-Type": "application/json",
                   "X-Signature": sign(cred["secret"], "POST", PATH, ts, body)}
        r = client.post(PATH, data=body, headers=headers)
        assert r.status_code == 200, r.get_json()

    post(0)
    profile = cProfile.Profile()
    cpu0 = time.process_time()
    profile.enable()
    for k in range(1, 6):
        post(k)
    profile.disable()
    print(f"CPU per batch (body building included): {(time.process_time() - cpu0) / 5 * 1000:.1f} ms")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
