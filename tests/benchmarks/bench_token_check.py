#!/usr/bin/env python
"""The cost of checking a bearer token against the account on every person request.

In one process, on the cheapest person request there is (`GET /api/v1/cases?limit=1`
through Flask's test client, a real database), it alternates rounds with the check as the
app does it and rounds that trust the token's claims alone (the check replaced by building
the person from the claims), and the check with its statement run on the psycopg connection
itself, prepared and pipelined with the transaction's BEGIN (`check_driver`: what skipping
SQLAlchemy's execution layers and one round trip would save), A, B, C, A, B, C... so all
see the same machine load. `--redis-url` adds, in one request context, the CPU time of the
statement alone against a Redis GET (what an "accounts changed" counter read would cost). Per mode it
reports the median over rounds of the CPU time per request of this process
(`time.process_time`: client, Flask and SQLAlchemy) and of the PostgreSQL backends serving
the database, and the wall time, with the ratios check / claims.

    .venv/bin/python tests/benchmarks/bench_token_check.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/lantian_bench --rounds 20 --requests 200

It resets the database's schema (a benchmark database only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from core import identity, web  # noqa: E402
from core.db import driver_sql  # noqa: E402
from core.errors import Unauthorized  # noqa: E402
from core.settings import Settings  # noqa: E402


def claims_only() -> web.Person:
    """The person as the token says, without reading the account: what the check costs is the
    difference to this."""
    scheme, _, token = web.request.headers.get("Authorization", "").partition(" ")
    claims = identity.decode_token(token.strip(), web.runtime().settings.secret_key)
    if scheme.lower() != "bearer" or claims is None:
        raise Unauthorized("the token is invalid or expired", code="invalid_token")
    return web.Person(int(claims["sub"]), claims["usr"], claims["role"], claims["region"], claims["org"])


def driver_check() -> web.Person:
    """The check with the account read on the driver connection, prepared, in a pipeline with BEGIN."""
    claims = claims_only()
    conn = web.db().connection().connection.driver_connection
    with conn.pipeline():
        cursor = conn.execute(driver_sql(identity.PERSON_NOW), {"user_id": claims.user_id}, prepare=True)
    account = cursor.fetchone()
    if account is None or account[4] != 0:
        raise Unauthorized("the token is no longer valid", code="invalid_token")
    return claims


def per_call_us(call: Callable[[], Any], n: int = 2000) -> float:
    for _ in range(50):
        call()
    cpu0 = time.process_time()
    for _ in range(n):
        call()
    return 1e6 * (time.process_time() - cpu0) / n


def backend_cpu_s(engine: Any, database: str) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to `database` (our pool's)."""
    with engine.connect() as conn:
        pids = [r[0] for r in conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d "
                                                "AND pid <> pg_backend_pid()"), {"d": database})]
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        total += int(rest[11]) + int(rest[12])
    return total / 100  # clock ticks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--requests", type=int, default=200, help="requests per round")
    p.add_argument("--redis-url", help="also time the statement alone against one Redis GET")
    p.add_argument("--breakdown", action="store_true", help="CPU inside the check, the view and psycopg's execute")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_token_check.json"))
    args = p.parse_args()
    url = args.database_url
    admin_engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin_engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    from alembic import command

    from lantian.app import create_app
    from lantian.cli import alembic_config, cli

    command.upgrade(alembic_config(url), "heads")
    app = create_app(Settings(database_url=url, redis_url=None, secret_key="bench-secret-key-at-least-32-bytes-long",
                              station_key_encryption_key="bench-station-key-encryption-key"))
    runner = app.test_cli_runner()
    created = runner.invoke(cli, args=["users", "create", "--username", "bench_police", "--password", "bench-pw-123456",
                                  "--role", "police", "--region", "320200"])
    assert created.exit_code == 0, created.output
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "bench_police", "password": "bench-pw-123456"})
    headers = {"Authorization": "Bearer " + token.get_json()["access_token"]}
    database = url.rsplit("/", 1)[1]
    checked: Callable[[], web.Person] = web._authenticate_person
    modes = {"check": checked, "claims": claims_only, "check_driver": driver_check}

    spent: dict[tuple[str, str], float] = {}
    current = ["check"]

    def timed(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*a: Any, **k: Any) -> Any:
            cpu0 = time.process_time()
            try:
                return f(*a, **k)
            finally:
                key = (current[0], name)
                spent[key] = spent.get(key, 0.0) + time.process_time() - cpu0
        return timed_call

    checks = dict(modes)
    if args.breakdown:  # CPU inside the check, the view (check included) and psycopg's execute
        import psycopg

        checks = {m: timed("check", f) for m, f in modes.items()}
        app.view_functions["cases.list_cases"] = timed("view", app.view_functions["cases.list_cases"])
        psycopg.Cursor.execute = timed("cursor.execute", psycopg.Cursor.execute)  # type: ignore[method-assign]

    def one_round(mode: str) -> tuple[float, float, float]:
        current[0] = mode
        web._authenticate_person = checks[mode]
        pg0, cpu0, t0 = backend_cpu_s(admin_engine, database), time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            response = client.get("/api/v1/cases?limit=1", headers=headers)
            assert response.status_code == 200, response.get_json()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        pg = backend_cpu_s(admin_engine, database) - pg0
        return 1000 * cpu / args.requests, 1000 * pg / args.requests, 1000 * wall / args.requests

    for mode in modes:  # warm-up: pools, caches, compiled statements
        one_round(mode)
    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            rows[mode].append(one_round(mode))
    web._authenticate_person = checked
    if args.redis_url:
        from redis import Redis

        redis = Redis.from_url(args.redis_url)
        with app.test_request_context("/api/v1/cases", headers=headers):
            connection = web.db().connection()
            user_id = int(claims_only().user_id)
            driver = connection.connection.driver_connection
            sql = driver_sql(identity.PERSON_NOW)
            print(f"one request context, CPU per call: statement through SQLAlchemy "
                  f"{per_call_us(lambda: connection.execute(identity.PERSON_NOW, {'user_id': user_id}).first()):.0f} "
                  f"us, on the driver connection (prepared) "
                  f"{per_call_us(lambda: driver.execute(sql, {'user_id': user_id}, prepare=True).fetchone()):.0f} us, "
                  f"Redis GET {per_call_us(lambda: redis.get('lantian:bench:accounts')):.0f} us, "
                  f"token decode {per_call_us(claims_only):.0f} us")
            web.close_db()
    for (mode, name), total in sorted(spent.items()):
        print(f"breakdown: {mode} {name} {1000 * total / (args.requests * (args.rounds + 1)):.3f} ms CPU/request")
    med = {m: [statistics.median(r[k] for r in rows[m]) for k in range(3)] for m in modes}
    args.out.write_text(json.dumps({"rounds": rows, "medians": med}, indent=1))
    print("| mode | app CPU ms/request | PostgreSQL CPU ms/request | wall ms/request |")
    print("| --- | --- | --- | --- |")
    for m in modes:
        print(f"| {m} | {med[m][0]:.3f} | {med[m][1]:.3f} | {med[m][2]:.3f} |")
    b = med["claims"]
    for m in ("check", "check_driver"):
        c = med[m]
        print(f"| {m} / claims | {c[0] / b[0]:.3f} | {c[1] / b[1] if b[1] else float('nan'):.3f} | "
              f"{c[2] / b[2]:.3f} |")


if __name__ == "__main__":
    main()
