#!/usr/bin/env python
"""Police and case queries at scale: the "Measured" item of the I/M loop issue.

Loopback only, on a database of its own. It

1. creates the database if missing and migrates it (`lantian db upgrade`, with
   LANTIAN_DATABASE_URL set); with --reset-schema it first drops schema `public`;
2. generates the data server-side (INSERT ... SELECT FROM generate_series, no Python per
   row), unless it is already there: --vehicles registry vehicles over six regions with
   GA 36 plates, 3 stations, --violations violations with their cases (at most one open
   case per vehicle) and the notices, penalties, repairs, retests and key-supervision
   listings that go with them, and --events processed rs_events (~500-byte JSONB payload);
   secondary indexes of rs_events and violations are dropped during the bulk insert and
   re-created from their own definitions afterwards; then `lantian violations keep-evidence`
   (the evidence each violation keeps since migration 0012, so pages read no events, as in
   production) and ANALYZE. Timings are printed and
   kept in table bench_meta, so a re-run reports them too;
3. starts `gunicorn -w 2 wsgi:app` on a loopback port, creates a region-scoped police user
   (320200) and an unscoped one with `lantian users create`, takes tokens from
   POST /api/v1/auth/token, and measures p50/p95/p99 of --requests sequential requests
   (one client, a fresh connection each, as gunicorn's sync workers close after each
   answer) of each query, for each user;
4. prints EXPLAIN (ANALYZE, BUFFERS) of the SQL behind each query, built with the same
   service functions the endpoints call, and flags sequential scans of big tables.

Each measured query also reports what it read per request: blocks PostgreSQL found outside
its shared buffers, the time it waited for them (`track_io_timing`, set on this database),
and the bytes the data directory's disk read (/proc/diskstats): so a query that grows with
the database can be told apart as cache misses or more work. With --warm the tables that do
not grow with the events (everything but the event partitions, their keys and snapshots)
are read into the OS page cache first (`pg_prewarm(..., 'read')`): the steady state of a
server that answers police all day, whose memory holds the violations and cases but not
years of passing measurements.

    .venv/bin/python tests/benchmarks/bench_queries.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/lantian_scale [--reset-schema] \\
        [--events 10000000] [--violations 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

BIN = Path(sys.executable).parent
TZ = "Asia/Shanghai"
# region -> issuing-authority letter of its plates (苏A Nanjing, 苏B Wuxi, 苏E Suzhou)
REGIONS = ("320200", "320281", "320282", "320500", "320581", "320100")
LETTERS = ("B", "B", "B", "E", "E", "A")
SCOPE = "320200"  # the scoped police user's region: 3202xx
BIG_TABLES = ("rs_events", "violations", "cases", "vehicles", "listings")
PASSWORD = "bench-password-123"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pg_url(url: str) -> str:
    """A plain libpq URL for psycopg."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


# --- generation -----------------------------------------------------------------------------


class Generator:
    def __init__(self, conn: Any, args: argparse.Namespace, cli: Callable[..., Any]) -> None:
        self.conn = conn
        self.args = args
        self.cli = cli  # `lantian` on the bench database
        self.timings: dict[str, float] = {}

    def q(self, sql: str, params: Any = None) -> list[Any]:
        if params is None:  # no placeholders: psycopg passes the text as is
            sql = sql.replace("%%", "%")
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def one(self, sql: str, params: Any = None) -> Any:
        rows = self.q(sql, params)
        return rows[0][0] if rows else None

    def timed(self, name: str, sql: str, params: Any = None) -> None:
        t0 = time.perf_counter()
        self.q(sql, params)
        dt = time.perf_counter() - t0
        self.timings[name] = self.timings.get(name, 0.0) + dt
        log(f"  {name}: {dt:.1f} s")

    def meta(self) -> dict[str, Any]:
        self.q("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        return {k: v for k, v in self.q("SELECT key, value FROM bench_meta")}

    def set_meta(self, key: str, value: Any) -> None:
        self.q("INSERT INTO bench_meta VALUES (%s, %s::jsonb) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
               (key, json.dumps(value)))

    def run(self) -> dict[str, Any]:
        a = self.args
        # Only this session: no triggers (the data is consistent by construction, so the
        # foreign-key checks are skipped per row), a big sort budget for the index builds.
        self.q("SET session_replication_role = replica")
        self.q("SET synchronous_commit = off")
        self.q("SET maintenance_work_mem = '512MB'")
        self.q("SET work_mem = '256MB'")
        meta = self.meta()
        t_all = time.perf_counter()
        did = False
        if (self.one("SELECT count(*) FROM vehicles") or 0) < a.vehicles:
            self.vehicles()
            did = True
        if self.one("SELECT count(*) FROM policies WHERE digest = 'bench000000000000000000000000000'") == 0:
            self.q("INSERT INTO policies VALUES ('bench000000000000000000000000000', 'bench-2026.1', "
                   "'{\"limits\": {}}'::jsonb, now() AT TIME ZONE 'UTC')")
        if (self.one("SELECT count(*) FROM violations") or 0) < a.violations:
            self.violations_and_cases()
            did = True
        have = self.one("SELECT coalesce(max(id), 0) FROM rs_events") or 0
        if have < a.events or self.one("SELECT count(*) FROM bench_saved_indexes WHERE tbl LIKE 'rs_event%%'"
                                       if self.table_exists("bench_saved_indexes") else "SELECT 0"):
            self.events(have)
            did = True
        if self.one("SELECT count(*) FROM violations WHERE evidence_json IS NULL"):
            # As in production since migration 0012: the judge keeps each violation's evidence,
            # and this command keeps that of older ones; pages then read no events. Analysed
            # first, as autovacuum would have: on partitions without statistics its reads by
            # event id are planned as sequential scans (4.5 s a batch of 1,000 at 10 M, not 0.2 s).
            self.timed("analyze", "ANALYZE")
            t0 = time.perf_counter()
            self.cli("violations", "keep-evidence", timeout=3600)
            self.timings["kept evidence"] = time.perf_counter() - t0
            log(f"  kept evidence: {self.timings['kept evidence']:.1f} s")
            did = True
        if did:
            self.timed("vacuum analyze", "VACUUM (ANALYZE)")  # visibility maps, as autovacuum leaves old months
            self.timings["total"] = time.perf_counter() - t_all
            # A run that generated only part (the rest was there) keeps the earlier steps' timings.
            timings = {**(meta.get("generation") or {}).get("timings_s", {}),
                       **{k: round(v, 1) for k, v in self.timings.items()}}
            timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 1)
            meta["generation"] = {"timings_s": timings,
                                  "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "load_average": os.getloadavg()}
            self.set_meta("generation", meta["generation"])
        else:
            log("data already present: generation skipped")
        self.q("RESET session_replication_role")
        return meta

    def table_exists(self, name: str) -> bool:
        return bool(self.one("SELECT to_regclass(%s) IS NOT NULL", (name,)))

    # Indexes are dropped during a bulk insert and re-created from their own definitions.

    def drop_indexes(self, table: str) -> None:
        self.q("CREATE TABLE IF NOT EXISTS bench_saved_indexes (tbl text, name text, kind text, ddl text)")
        if self.one("SELECT count(*) FROM bench_saved_indexes WHERE tbl = %s", (table,)):
            return  # already dropped by an interrupted run
        cons = self.q(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u')", (table,))
        idx = self.q(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)", (table,))
        for name, ddl in cons:
            self.q("INSERT INTO bench_saved_indexes VALUES (%s, %s, 'constraint', %s)", (table, name, ddl))
        for name, ddl in idx:
            self.q("INSERT INTO bench_saved_indexes VALUES (%s, %s, 'index', %s)", (table, name, ddl))
        for name, _ in cons:
            self.q(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in idx:
            self.q(f'DROP INDEX "{name}"')

    def restore_indexes(self, table: str) -> None:
        if not self.table_exists("bench_saved_indexes"):
            return
        for name, kind, ddl in self.q("SELECT name, kind, ddl FROM bench_saved_indexes WHERE tbl = %s", (table,)):
            # A partitioned table's index reads `ON ONLY`: re-created so, it would be an empty
            # invalid shell with no index on any partition.
            sql = (f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}' if kind == "constraint"
                   else ddl.replace(" ON ONLY ", " ON ", 1))
            self.timed(f"index {table}.{name}", sql)
        self.q("DELETE FROM bench_saved_indexes WHERE tbl = %s", (table,))

    def vehicles(self) -> None:
        log(f"vehicles: {self.args.vehicles:,}")
        regions = "ARRAY[" + ",".join(f"'{r}'" for r in REGIONS) + "]"
        letters = "ARRAY[" + ",".join(f"'{x}'" for x in LETTERS) + "]"
        self.timed("vehicles", f"""
            INSERT INTO vehicles (id, plate, plate_color, plate_key, registered, vin, fuel_type, category,
                emission_standard, use_nature, registered_on, region, fleet_id, cycle_last_on, cycle_next_due_on,
                remote_obd, created_at, updated_at)
            SELECT i, '苏' || letter || serial,
                CASE WHEN i % 20 < 8 THEN 'yellow' ELSE 'blue' END,
                '苏' || letter || translate(serial, 'ODQIBZSG', '00018256'),
                true, 'LZZ' || lpad(i::text, 14, '0'),
                CASE WHEN i % 20 < 8 THEN 'diesel' WHEN i % 20 < 19 THEN 'gasoline' ELSE 'gas' END,
                CASE WHEN i % 20 < 8 THEN 'N3' ELSE 'M1' END,
                3 + i % 4,
                CASE WHEN i % 20 < 8 THEN 'operating' ELSE 'non_operating' END,
                date '2012-01-01' + (i * 37) % 4000,
                region, NULL,
                date '2026-03-10' - (i % 365), date '2026-03-10' - (i % 365) + 365,
                CASE WHEN i % 20 < 8 THEN i % 10 < 8 ELSE NULL END,
                now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
            FROM (
                SELECT i, ({regions})[i % 6 + 1] AS region, ({letters})[i % 6 + 1] AS letter,
                       CASE WHEN i < 100000 THEN lpad(i::text, 5, '0')
                            ELSE substr('KLMNPQRTUV', (i - 100000) / 10000 + 1, 1)
                                 || lpad(((i - 100000) % 10000)::text, 4, '0') END AS serial
                FROM generate_series(1, {int(self.args.vehicles)}) AS i
            ) s
        """)
        self.q("SELECT setval(pg_get_serial_sequence('vehicles', 'id'), (SELECT max(id) FROM vehicles))")
        # The registry's history as an upsert keeps it: every vehicle's first version from its
        # registration, a later version for one in five (a region or use change), and the
        # previous inspection cycle beside the current one.
        self.timed("vehicle versions", """
            INSERT INTO vehicle_versions (vehicle_id, valid_from, fleet_id, use_nature, fuel_type, region, recorded_at)
            SELECT id, registered_on, fleet_id, use_nature, fuel_type, region, now() AT TIME ZONE 'UTC' FROM vehicles
            UNION ALL
            SELECT id, date '2025-06-01', fleet_id, use_nature, fuel_type, region, now() AT TIME ZONE 'UTC'
            FROM vehicles WHERE id % 5 = 0
        """)
        self.timed("inspection cycles", """
            INSERT INTO inspection_cycles (vehicle_id, last_on, next_due_on, recorded_at)
            SELECT id, cycle_last_on - 365, cycle_last_on, now() AT TIME ZONE 'UTC' FROM vehicles
            UNION ALL
            SELECT id, cycle_last_on, cycle_next_due_on, now() AT TIME ZONE 'UTC' FROM vehicles
        """)

    def violations_and_cases(self) -> None:
        a = self.args
        for t in ("violations", "strikes", "notices", "penalties", "repairs", "retests", "listings", "cases"):
            self.q(f"TRUNCATE {t} CASCADE")
        # One vehicle in three has violations (vehicle 3m + 1 + m % 3 for m < vehicles / 3: all six
        # regions), a few of them many (skewed: the heaviest has ~500).
        violators = a.vehicles // 3
        log(f"violations: {a.violations:,} over {violators:,} vehicles, with their cases")
        # Staging: the vehicle, the instant and the case segment of each violation. A vehicle
        # has 1-3 cases over the year; its violations fall into the case of their segment.
        self.q("DROP TABLE IF EXISTS bench_vstage")
        self.timed("violations staging", """
            CREATE UNLOGGED TABLE bench_vstage AS
            SELECT k, vid, ncase,
                   least(ncase - 1, floor(r * ncase))::int AS seg,
                   t0 + r * interval '365 days' AS detected_at
            FROM (
                SELECT k, vid, 1 + (vid / 3) %% 3 AS ncase, random() AS r,
                       (now() AT TIME ZONE 'UTC') - interval '365 days' AS t0
                FROM (SELECT k, 3 * m + 1 + m %% 3 AS vid
                      FROM (SELECT k, floor(%s * power(random(), 1.4))::bigint AS m
                            FROM generate_series(1, %s) AS k) r) g
            ) s
        """, (violators, a.violations))
        # Cases: the last segment of a vehicle is its current case (60% still open: open,
        # notified, repaired; notified ones mostly past their deadline), earlier ones closed.
        self.q("DROP TABLE IF EXISTS bench_cmap")
        self.timed("cases", """
            CREATE UNLOGGED TABLE bench_cmap AS
            SELECT row_number() OVER (ORDER BY opened_at, vid, seg) AS id, vid, seg, opened_at,
                   CASE WHEN seg < ncase - 1 OR (vid / 3) %% 10 < 4 THEN 'closed'
                        WHEN (vid / 3) %% 10 < 6 THEN 'open'
                        WHEN (vid / 3) %% 10 < 9 THEN 'notified' ELSE 'repaired' END AS status
            FROM (SELECT vid, seg, ncase, min(detected_at) AS opened_at FROM bench_vstage
                  GROUP BY vid, seg, ncase) c;
            INSERT INTO cases (id, vehicle_id, status, region, opened_at, deadline_on, closed_at, repaired,
                               penalty_settled)
            SELECT m.id, m.vid, m.status, v.region, m.opened_at,
                   CASE WHEN m.status = 'open' THEN NULL
                        ELSE (m.opened_at AT TIME ZONE 'UTC' AT TIME ZONE 'Asia/Shanghai')::date + 3 + 15 END,
                   CASE WHEN m.status = 'closed'
                        THEN least(m.opened_at + interval '25 days', (now() AT TIME ZONE 'UTC') - interval '1 hour')
                   END,
                   m.status IN ('repaired', 'closed'),
                   m.status = 'closed' OR (m.status = 'repaired' AND m.id %% 2 = 0)
            FROM bench_cmap m JOIN vehicles v ON v.id = m.vid
        """)
        self.q("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
        self.drop_indexes("violations")
        self.timed("violations", """
            INSERT INTO violations (id, vehicle_id, source, source_ref, detected_at, detected_on, region, details,
                                    case_id, created_at)
            SELECT row_number() OVER (ORDER BY s.detected_at, s.k), s.vid, src, s.k::text, s.detected_at,
                   (s.detected_at AT TIME ZONE 'UTC' AT TIME ZONE 'Asia/Shanghai')::date, v.region,
                   CASE WHEN src = 'remote_sensing'
                        THEN jsonb_build_object('event_id', s.k, 'pollutants',
                                 CASE WHEN v.fuel_type = 'diesel' THEN '["opacity_pct", "no_ppm"]'::jsonb
                                      ELSE '["co_pct"]'::jsonb END,
                                 'policy', 'bench000000000000000000000000000')
                        WHEN src = 'black_smoke'
                        THEN jsonb_build_object('snapshot_id', s.k, 'ringelmann', 2 + s.k %% 3)
                        ELSE jsonb_build_object('test_id', s.k, 'method', 'free_acceleration') END,
                   m.id, s.detected_at + interval '3 minutes'
            FROM (SELECT *, CASE WHEN k %% 20 < 17 THEN 'remote_sensing' WHEN k %% 20 = 17 THEN 'black_smoke'
                                 WHEN k %% 20 = 18 THEN 'road_check' ELSE 'depot_check' END AS src
                  FROM bench_vstage) s
            JOIN vehicles v ON v.id = s.vid
            JOIN bench_cmap m ON m.vid = s.vid AND m.seg = s.seg
        """)
        self.q("SELECT setval(pg_get_serial_sequence('violations', 'id'), (SELECT max(id) FROM violations))")
        self.restore_indexes("violations")
        # The steps of the loop, as the statuses imply them.
        self.timed("case records", """
            INSERT INTO notices (case_id, issued_on, deadline_days, deadline_on, issued_by, created_at)
            SELECT id, deadline_on - 15, 15, deadline_on, 'officer1', opened_at + interval '3 days'
            FROM cases WHERE deadline_on IS NOT NULL;
            INSERT INTO penalties (case_id, waived, decision_no, amount_yuan, legal_basis, code, reason, issued_at,
                                   issued_by, created_at)
            SELECT id, id %% 10 = 0, CASE WHEN id %% 10 <> 0 THEN 'JX' || id END,
                   CASE WHEN id %% 10 <> 0 THEN 200 END, 'Air Pollution Prevention and Control Law, art. 113',
                   '6063', CASE WHEN id %% 10 = 0 THEN 'first offence' END, opened_at + interval '5 days',
                   'police1', opened_at + interval '5 days'
            FROM cases WHERE penalty_settled;
            INSERT INTO repairs (case_id, org_id, completed_at, items, notes, reported_by, created_at)
            SELECT id, NULL, opened_at + interval '10 days', '["replaced DPF", "cleaned EGR valve"]'::jsonb,
                   'bench', 'repair1', opened_at + interval '10 days'
            FROM cases WHERE repaired;
            INSERT INTO retests (case_id, org_id, tested_at, method, results, passed, reported_by, created_at)
            SELECT id, NULL, closed_at, 'free_acceleration', '{"opacity_pct": 12.5}'::jsonb, true, 'istation1',
                   closed_at
            FROM cases WHERE status = 'closed';
            INSERT INTO listings (list_kind, subject_type, subject_id, rule, basis, region, period_start, period_end,
                                  listed_at, evidence, ratio, active)
            SELECT 'key_supervision', 'vehicle', v.id, 'three_strikes', 'cycle', v.region, v.cycle_last_on,
                   v.cycle_next_due_on, now() AT TIME ZONE 'UTC' - (v.id %% 200) * interval '1 day',
                   '[]'::jsonb, NULL, v.id %% 5 <> 0
            FROM vehicles v WHERE v.id %% 21 = 0
        """)
        self.q("DROP TABLE bench_vstage; DROP TABLE bench_cmap")

    def events(self, have: int) -> None:
        a = self.args
        stations = [r[0] for r in self.q("SELECT id FROM stations WHERE code LIKE 'BQS%%' ORDER BY code")]
        if len(stations) < 3:
            raise RuntimeError("the bench stations are missing")
        log(f"rs_events: {have:,} present, generating up to {a.events:,}")
        self.drop_indexes("rs_events")
        self.drop_indexes("rs_event_keys")
        self.months_partitions()
        chunk = 1_000_000
        start = have + 1
        while start <= a.events:
            end = min(a.events, start + chunk - 1)
            self.timed("rs_events", """
                WITH g AS MATERIALIZED (
                    SELECT i, (%s::bigint[])[1 + i %% 3] AS st, 'E' || lpad(i::text, 10, '0') AS eid,
                           1 + (i * 2654435761) %% %s AS vid,
                           -- spread over the year by a stride coprime to its seconds, so that any
                           -- prefix (10 M, then 50 M on the same database) fills all twelve months
                           date_trunc('second', (now() AT TIME ZONE 'UTC') - interval '365 days'
                               + ((i * 7919) %% 31536000) * interval '1 second'
                               + random() * interval '30 seconds') AS m,
                           random() AS r1, random() AS r2, random() AS r3
                    FROM generate_series(%s::bigint, %s::bigint) AS i
                ), k AS (  -- the idempotency keys and ids (migration 0014)
                    INSERT INTO rs_event_keys (id, station_id, event_id, measured_at) SELECT i, st, eid, m FROM g
                )
                INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, status,
                    processed_at, valid, reasons, verdict, exceeded, fuel_type, plate_read, plate_match, vehicle_id,
                    runs, judged, warnings, limits, policy_digest, violation_id)
                SELECT i, st, eid, md5(eid), jsonb_build_object(
                        'event_id', eid,
                        'measured_at', to_char(m AT TIME ZONE 'UTC' AT TIME ZONE 'Asia/Shanghai',
                                               'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'),
                        'lane', 1 + i %% 3,
                        'plate', jsonb_build_object('number', v.plate, 'color', v.plate_color,
                                                    'confidence', round((0.86 + r1 * 0.13)::numeric, 2)),
                        'speed_kmh', round((20 + r2 * 50)::numeric, 1),
                        'acceleration_ms2', round((-0.5 + r3 * 1.5)::numeric, 2),
                        'vsp_kw_t', round((2 + r1 * 10)::numeric, 1),
                        'measurements', CASE WHEN v.fuel_type = 'diesel'
                            THEN jsonb_build_object('co2_pct', round((9 + r2 * 5)::numeric, 2),
                                                    'opacity_pct', round((2 + r3 * 20)::numeric, 1),
                                                    'no_ppm', round(200 + r1 * 1000), 'ringelmann', 0)
                            ELSE jsonb_build_object('co2_pct', round((10 + r2 * 5)::numeric, 2),
                                                    'co_pct', round((0.05 + r3 * 1.15)::numeric, 2),
                                                    'hc_ppm', round(40 + r1 * 140), 'no_ppm', round(100 + r2 * 800))
                            END,
                        'conditions', jsonb_build_object('wind_speed_ms', round((0.3 + r3 * 3.7)::numeric, 1),
                                                         'temperature_c', round((5 + r1 * 15)::numeric, 1),
                                                         'humidity_pct', 35 + (i %% 46), 'pressure_kpa', 101.2),
                        'fuel_type_observed', v.fuel_type),
                    m, m + interval '2 seconds', 'processed', m + interval '3 seconds', i %% 11 <> 0,
                    CASE WHEN i %% 11 = 0 THEN '["wind_too_strong"]'::jsonb ELSE '[]'::jsonb END,
                    CASE WHEN i %% 11 = 0 THEN 'invalid' WHEN i %% 14 = 0 THEN 'exceed' ELSE 'pass' END,
                    CASE WHEN i %% 14 = 0 AND i %% 11 <> 0 THEN '["no_ppm"]'::jsonb ELSE '[]'::jsonb END,
                    v.fuel_type, v.plate, 'exact', v.id,
                    jsonb_build_object('no_ppm', i %% 3), '[]'::jsonb, '[]'::jsonb,
                    '{"co_pct": 3.0, "hc_ppm": 200, "no_ppm": 1500, "opacity_pct": 30}'::jsonb,
                    'bench000000000000000000000000000', NULL
                FROM g JOIN vehicles v ON v.id = g.vid
            """, (stations, a.vehicles, start, end))
            log(f"  rs_events up to {end:,}")
            start = end + 1
        self.q("SELECT setval(pg_get_serial_sequence('rs_event_keys', 'id'), (SELECT max(id) FROM rs_event_keys))")
        self.restore_indexes("rs_event_keys")
        self.restore_indexes("rs_events")
        # The statistics' counts, as the judges and the hourly merge would have left them
        # (remote_sensing.counts): one row per hour, station and kind of verdict.
        self.q("TRUNCATE rs_event_counts")
        self.timed("rs_event_counts", """
            INSERT INTO rs_event_counts (hour, station_id, valid, verdict, fuel_type, exceeded, reasons, n, merged)
            SELECT date_trunc('hour', measured_at), station_id, valid, verdict, fuel_type, exceeded, reasons,
                   count(*), true
            FROM rs_events WHERE status = 'processed' GROUP BY 1, 2, 3, 4, 5, 6, 7""")
        # The tested months (remote_sensing.tested): each vehicle validly measured, once per
        # local month and region of the station.
        self.q("TRUNCATE rs_tested_months")
        self.timed("rs_tested_months", """
            INSERT INTO rs_tested_months (month, region, vehicle_id)
            SELECT DISTINCT date_trunc('month', (e.measured_at AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Shanghai')::date,
                   s.region, e.vehicle_id
            FROM rs_events e JOIN stations s ON s.id = e.station_id
            WHERE e.status = 'processed' AND e.valid AND e.vehicle_id IS NOT NULL""")

    def months_partitions(self) -> None:
        """The monthly partitions of the generated year (the sweep only makes months ahead)."""
        today = datetime.now(UTC).date()
        month = date(today.year - 1, today.month, 1)
        while month < date(today.year, today.month, 1):
            name = f"rs_events_y{month.year:04d}m{month.month:02d}"
            after = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            if not self.table_exists(name):
                self.q(f"CREATE TABLE {name} PARTITION OF rs_events FOR VALUES FROM ('{month}') TO ('{after}')")
            month = after


# --- HTTP --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One request per fresh connection (gunicorn's sync workers close after each answer)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any, float]:
        import http.client

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Connection": "close"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        dt = time.perf_counter() - t0
        conn.close()
        self.last_size = len(raw)
        return resp.status, (json.loads(raw) if raw else None), dt


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- the bench ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import psycopg

        self.args = args
        self.url = pg_url(args.database_url)
        self.ensure_database()
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.logdir = Path(tempfile.mkdtemp(prefix="bench_queries_"))
        self.env = {**os.environ, "LANTIAN_DATABASE_URL": args.database_url,
                    "LANTIAN_REDIS_URL": args.redis_url,
                    "LANTIAN_SECRET_KEY": "bench-secret-key-not-for-production", "PYTHONUNBUFFERED": "1"}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.disk = self.data_disk()
        self.results: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                                        "args": vars(args), "load": {}}

    def ensure_database(self) -> None:
        import psycopg

        parts = urlsplit(self.url)
        name = parts.path.lstrip("/")
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                log(f"creating database {name}")
                c.execute(f'CREATE DATABASE "{name}"')

    def q(self, sql: str, params: Any = None) -> list[Any]:
        if params is None:  # no placeholders: psycopg passes the text as is
            sql = sql.replace("%%", "%")
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def cli(self, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(BIN / "lantian"), *argv], env=self.env, cwd=REPO, capture_output=True, text=True,
                             timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"lantian {' '.join(argv)}: {out.stderr[-2000:]}")
        return out

    def io(self) -> dict[str, float]:
        """Counters of reads so far: PostgreSQL's for this database, and the disk's sectors.
        Backends flush their statistics when idle, at most once a second: hence the wait."""
        time.sleep(1.2)
        read, hit, ms = self.q("SELECT blks_read, blks_hit, blk_read_time FROM pg_stat_database "
                               "WHERE datname = current_database()")[0]
        out = {"blks_read": float(read), "blks_hit": float(hit), "read_ms": float(ms)}
        if self.disk:
            for line in Path("/proc/diskstats").read_text().splitlines():
                f = line.split()
                if (int(f[0]), int(f[1])) == self.disk:
                    out["disk_bytes"] = int(f[5]) * 512.0
        return out

    def data_disk(self) -> tuple[int, int] | None:
        """(major, minor) of the device holding the data directory, if this process can see it."""
        import psycopg

        try:
            dev = os.stat(self.q("SHOW data_directory")[0][0]).st_dev
        except (OSError, psycopg.Error):  # not a superuser, or another host's directory
            return None
        return os.major(dev), os.minor(dev)

    def warm(self) -> None:
        """Read every relation that does not grow with the events into the OS page cache."""
        self.q("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        rels = self.q("""
            WITH base AS (
                SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
                  AND c.relname NOT LIKE 'rs\\_events%%' AND c.relname NOT LIKE 'rs\\_event\\_keys%%'
                  AND c.relname NOT LIKE 'rs\\_snapshot%%'),
            rels AS (
                SELECT oid FROM base
                UNION SELECT reltoastrelid FROM base WHERE reltoastrelid <> 0
                UNION SELECT i.indexrelid FROM pg_index i
                      WHERE i.indrelid IN (SELECT oid FROM base UNION SELECT reltoastrelid FROM base))
            SELECT oid, pg_relation_size(oid) FROM rels JOIN pg_class c USING (oid) WHERE c.relkind IN ('r', 'i', 't')
            """)
        t0 = time.perf_counter()
        for oid, _size in rels:
            self.q("SELECT pg_prewarm(%s, 'read')", (oid,))
        total = sum(size for _, size in rels)
        self.results["warmed"] = {"relations": len(rels), "bytes": total, "seconds": time.perf_counter() - t0}
        log(f"warmed {len(rels)} relations, {total / 2**30:.2f} GiB, in {time.perf_counter() - t0:.1f} s")

    def load(self, label: str) -> None:
        self.results["load"][label] = os.getloadavg()
        log(f"load average ({label}): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # --- setup

    def setup(self) -> None:
        if self.args.reset_schema:
            log("resetting schema public")
            self.q("DROP SCHEMA public CASCADE")
            self.q("CREATE SCHEMA public")
        log("lantian db upgrade")
        t0 = time.perf_counter()
        self.cli("db", "upgrade")
        self.q(f'ALTER DATABASE "{urlsplit(self.url).path.lstrip("/")}" SET track_io_timing = on')
        log(f"  {time.perf_counter() - t0:.1f} s")
        have = {r[0] for r in self.q("SELECT code FROM stations WHERE code LIKE 'BQS%%'")}
        calls = [[str(BIN / "lantian"), "stations", "create", "--code", f"BQS{n}", "--kind", "remote_sensing",
                  "--region", REGIONS[n], "--name", f"bench station {n}"] for n in range(3) if f"BQS{n}" not in have]
        users = {r[0] for r in self.q("SELECT username FROM users")}
        for name, region in (("police1", SCOPE), ("police_all", None)):
            if name not in users:
                calls.append([str(BIN / "lantian"), "users", "create", "--username", name, "--password", PASSWORD,
                              "--role", "police", *(["--region", region] if region else [])])
        running = [subprocess.Popen(c, env=self.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for c in calls]
        for p in running:
            _out, err = p.communicate(timeout=300)
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(p.args[1:4])}: {err[-2000:]}")

    def generate(self) -> None:
        self.load("before generation")
        gen = Generator(self.conn, self.args, self.cli)
        meta = gen.run()
        self.results["generation"] = meta.get("generation")
        counts = {}
        for t in ("vehicles", "rs_events", "violations", "cases", "notices", "penalties", "repairs", "retests",
                  "listings"):
            counts[t] = self.q("SELECT count(*) FROM " + t)[0][0]
        counts["open_cases"] = self.q("SELECT count(*) FROM cases WHERE status <> 'closed'")[0][0]
        sizes = {t: self.q("SELECT pg_size_pretty(pg_total_relation_size(%s))", (t,))[0][0] for t in BIG_TABLES}
        sizes["database"] = self.q("SELECT pg_size_pretty(pg_database_size(current_database()))")[0][0]
        self.results["counts"], self.results["sizes"] = counts, sizes
        log(f"counts: {counts}")
        log(f"sizes: {sizes}")
        if self.results["generation"]:
            log(f"generation timings: {self.results['generation']}")

    # --- HTTP measurements

    def start_gunicorn(self) -> int:
        port = free_port()
        logf = open(self.logdir / "gunicorn.log", "ab")
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-w", str(self.args.gunicorn_workers), "-b",
                                 f"127.0.0.1:{port}", "wsgi:app"], env=self.env, cwd=REPO, stdout=logf,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.procs.append(proc)
        deadline = time.time() + 90
        client = Client(port)
        while time.time() < deadline:
            try:
                if client.request("GET", "/healthz")[0] == 200:
                    return port
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer; see {self.logdir / 'gunicorn.log'}")

    def stop_all(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.procs.clear()

    def samples(self) -> dict[str, Any]:
        """Plates with violations, in and out of the scoped region, and a date window."""
        rng = random.Random(7)
        prefix = SCOPE[:4]
        rows = self.q("""
            SELECT v.plate, v.plate_color, v.region FROM vehicles v
            WHERE EXISTS (SELECT 1 FROM violations x WHERE x.vehicle_id = v.id)
            ORDER BY v.id""")
        inside = [r for r in rows if r[2].startswith(prefix)]
        n = self.args.requests
        return {
            "scoped": [rng.choice(inside)[:2] for _ in range(n)],
            "all": [rng.choice(rows)[:2] for _ in range(n)],
        }

    def measure(self) -> None:
        port = self.start_gunicorn()
        client = Client(port)
        tokens = {}
        for user in ("police1", "police_all"):
            status, body, _ = client.request("POST", "/api/v1/auth/token", body={"username": user,
                                                                                "password": PASSWORD})
            if status != 200:
                raise RuntimeError(f"token for {user}: {status} {body}")
            tokens[user] = body["access_token"]
        plates = self.samples()
        today = datetime.now(UTC).date()
        frm, to = (today - timedelta(days=30)).isoformat(), today.isoformat()
        old_frm, old_to = (today - timedelta(days=210)).isoformat(), (today - timedelta(days=180)).isoformat()
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        n = self.args.requests
        results: dict[str, Any] = {}

        def run(label: str, user: str, paths: list[str]) -> None:
            for p in paths[:10]:  # warm-up: connection pool, plan cache, the pages touched
                client.request("GET", p, tokens[user])
            times, sizes, statuses, items = [], [], {}, []
            before = self.io()
            for p in paths:
                status, body, dt = client.request("GET", p, tokens[user])
                statuses[status] = statuses.get(status, 0) + 1
                times.append(dt * 1000)
                sizes.append(client.last_size)
                if isinstance(body, dict) and "items" in body:
                    items.append(len(body["items"]))
            after = self.io()
            reads = {k: (after[k] - before[k]) / len(times) for k in after if k in before}
            row = {"n": len(times), "p50": pct(times, 50), "p95": pct(times, 95), "p99": pct(times, 99),
                   "max": max(times), "statuses": statuses, "bytes_mean": statistics.mean(sizes),
                   "items_mean": statistics.mean(items) if items else None, "reads_per_request": reads}
            results.setdefault(label, {})[user] = row
            log(f"  {label:<42} {user:<10} p50 {row['p50']:6.1f}  p95 {row['p95']:6.1f}  p99 {row['p99']:6.1f} ms"
                f"  {statuses} {row['bytes_mean'] / 1024:.0f} KiB"
                + (f"  items/page {row['items_mean']:.1f}" if items else ""))
            log(f"  {'':<42} {'':<10} per request: {reads['blks_read']:.0f} blocks read "
                f"({reads['read_ms']:.1f} ms waited), {reads['blks_hit']:.0f} hit"
                + (f", disk {reads['disk_bytes'] / 1024:.0f} KiB" if "disk_bytes" in reads else ""))

        if self.args.warm:
            self.warm()
        self.load("before measuring")
        for user, key in (("police1", "scoped"), ("police_all", "all")):
            log(f"measuring as {user} ({'region ' + SCOPE if user == 'police1' else 'unscoped'}), {n} requests each")
            run("(a) GET /vehicles/{plate}", user,
                [f"/api/v1/vehicles/{quote(p)}?plate_color={c}" for p, c in plates[key]])
            run("(b) GET /violations?plate&plate_color", user,
                [f"/api/v1/violations?plate={quote(p)}&plate_color={c}" for p, c in plates[key]])
            run("(c1) GET /cases?status=open page 1", user, ["/api/v1/cases?status=open"] * n)
            cursor, walk = None, []
            t0 = time.perf_counter()
            for _ in range(20):
                status, body, _ = client.request(
                    "GET", "/api/v1/cases?status=open" + (f"&cursor={cursor}" if cursor else ""), tokens[user])
                cursor = body["next_cursor"]
                walk.append(cursor)
                if cursor is None:
                    break
            results.setdefault("(c2) walk 21 pages", {})[user] = (time.perf_counter() - t0) * 1000
            self.results.setdefault("deep_cursor", {})[user] = cursor
            if cursor:
                run("(c2) GET /cases?status=open page 21", user, [f"/api/v1/cases?status=open&cursor={cursor}"] * n)
            run("(d) GET /cases?overdue=true&region=320200", user, ["/api/v1/cases?overdue=true&region=320200"] * n)
            run("(e) GET /violations?region=320200&from&to", user,
                [f"/api/v1/violations?region=320200&from={frm}&to={to}"] * n)
            run("(e2) same, a window 6 months back", user,
                [f"/api/v1/violations?region=320200&from={old_frm}&to={old_to}"] * n)
            run("(c3) GET /cases?status=open&limit=10", user, ["/api/v1/cases?status=open&limit=10"] * n)
            run("(f) GET /stats/stations, last month", user, [f"/api/v1/stats/stations?month={last_month}"] * n)
            run("(f2) GET /stats/stations, this month", user, ["/api/v1/stats/stations"] * n)
            run("(f3) GET /stats/supervision, last month", user,
                [f"/api/v1/stats/supervision?month={last_month}"] * max(20, n // 10))
            self.load(f"after {user}")
        self.results["latency_ms"] = results
        self.results["window"] = {"from": frm, "to": to, "old_from": old_frm, "old_to": old_to}
        self.stop_all()

    def late_judge(self) -> None:
        """The judge's time for one late upload: an event measured five months ago, of a vehicle
        with a year of history, judged alone (`workers.jobs.judge_pending` in this process, on
        the bench database, no queue), --requests // 5 times."""
        os.environ.update({k: v for k, v in self.env.items() if k != "LANTIAN_REDIS_URL"})
        os.environ.pop("LANTIAN_REDIS_URL", None)
        from workers import jobs

        station = self.q("SELECT id FROM stations WHERE code = 'BQS0'")[0][0]
        base = datetime.now(UTC) - timedelta(days=150)
        vehicles = [r[0] for r in self.q(
            "SELECT id FROM vehicles WHERE registered ORDER BY id LIMIT 2000")]
        random.Random(7).shuffle(vehicles)
        times = []
        before = self.io()
        log(f"late uploads: {max(20, self.args.requests // 5)} events measured ~150 days ago, each judged alone")
        for k, vid in enumerate(vehicles[:max(20, self.args.requests // 5)]):
            m = (base + timedelta(minutes=k)).replace(microsecond=0)
            eid = f"LATE{self.results['started'][:19]}-{k}"
            # A copy of one of the vehicle's events, as a station would upload it late.
            self.q("""
                WITH src AS (SELECT payload, claim_shard FROM rs_events WHERE vehicle_id = %(v)s LIMIT 1),
                key AS (INSERT INTO rs_event_keys (station_id, event_id, measured_at)
                        VALUES (%(st)s, %(eid)s, %(m)s) RETURNING id)
                INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at,
                                       status, claim_shard)
                SELECT key.id, %(st)s, %(eid)s, md5(%(eid)s),
                       jsonb_set(jsonb_set(src.payload, '{event_id}', to_jsonb(%(eid)s::text)),
                                 '{measured_at}', to_jsonb(to_char(%(m)s::timestamp, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
                       %(m)s, now() AT TIME ZONE 'UTC', 'received', src.claim_shard
                FROM src, key""", {"v": vid, "st": station, "eid": eid, "m": m.replace(tzinfo=None)})
            t0 = time.perf_counter()
            judged = jobs.judge_pending()
            times.append((time.perf_counter() - t0) * 1000)
            if judged != 1:
                raise RuntimeError(f"late upload {eid}: the judge judged {judged} events")
        after = self.io()
        reads = {k: (after[k] - before[k]) / len(times) for k in after if k in before}
        row = {"n": len(times), "p50": pct(times, 50), "p95": pct(times, 95), "p99": pct(times, 99),
               "max": max(times), "reads_per_upload_with_its_insert": reads}
        self.results.setdefault("latency_ms", {})["(g) judge one late upload"] = {"in-process": row}
        log(f"  (g) judge one late upload  p50 {row['p50']:6.1f}  p95 {row['p95']:6.1f}  p99 {row['p99']:6.1f} ms"
            f"  per upload (its insert too): {reads['blks_read']:.0f} blocks read ({reads['read_ms']:.1f} ms waited)"
            + (f", disk {reads['disk_bytes'] / 1024:.0f} KiB" if "disk_bytes" in reads else ""))

    # --- EXPLAIN

    def explain(self) -> None:
        """The SQL of each endpoint, built with the services the endpoints call."""
        from sqlalchemy import func, select
        from sqlalchemy.dialects import postgresql

        from core.pagination import keyset
        from core.registry import Vehicle
        from enforcement import cases
        from enforcement.models import Case, Listing, Notice, Violation
        from enforcement.violations import ViolationFilter, violations_query

        dialect = postgresql.dialect()

        def sql(stmt: Any) -> str:
            return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

        def paged(stmt: Any, sort_col: Any, id_col: Any, cursor: str | None = None, limit: int = 50) -> Any:
            return keyset(stmt, sort_col, id_col, limit=limit, cursor=cursor)  # as core.pagination.page does

        tz = __import__("zoneinfo").ZoneInfo(TZ)
        tz_today = datetime.now(UTC).astimezone(tz).date()
        win = self.results.get("window") or {
            "from": (tz_today - timedelta(days=30)).isoformat(), "to": tz_today.isoformat(),
            "old_from": (tz_today - timedelta(days=210)).isoformat(),
            "old_to": (tz_today - timedelta(days=180)).isoformat()}
        plate, color, vid = self.q("""SELECT v.plate, v.plate_color, v.id FROM vehicles v
            WHERE v.region = '320200' AND EXISTS (SELECT 1 FROM cases c WHERE c.vehicle_id = v.id
                                                  AND c.status <> 'closed')
            ORDER BY v.id LIMIT 1 OFFSET 100""")[0]
        case_ids = [r[0] for r in self.q("SELECT id FROM cases WHERE status = 'open' ORDER BY opened_at DESC, id DESC "
                                         "LIMIT 51")]
        cycle = self.q("SELECT cycle_last_on, cycle_next_due_on FROM vehicles WHERE id = %s", (vid,))[0]
        deep = (self.results.get("deep_cursor") or {}).get("police1")
        queries: list[tuple[str, Any]] = [
            ("(a) find_vehicle", select(Vehicle).where(Vehicle.plate == plate, Vehicle.plate_color == color)),
            ("(a) open_case_of", select(Case).where(Case.vehicle_id == vid, Case.status != "closed")),
            ("(a) cycle_violations", select(func.count()).select_from(Violation).where(
                Violation.vehicle_id == vid, Violation.detected_on >= cycle[0], Violation.detected_on < cycle[1])),
            ("(a) vehicle_entries (listings)", select(Listing).where(
                Listing.subject_type == "vehicle", Listing.subject_id == vid)
                .order_by(Listing.listed_at.desc(), Listing.id.desc())),
            ("(a) is_blacklisted", select(func.count()).select_from(Listing).where(
                Listing.subject_type == "vehicle", Listing.subject_id == vid, Listing.list_kind == "blacklist",
                Listing.active.is_(True))),
            ("(a) key_supervision_of: overdue case", select(Case.vehicle_id, Case.deadline_on).where(
                Case.vehicle_id.in_([vid]), cases.overdue_clause(tz_today))),
            ("(a) key_supervision_of: three strikes", select(Listing.subject_id, func.min(Listing.listed_at)).where(
                Listing.subject_id.in_([vid]), Listing.list_kind == "key_supervision",
                Listing.subject_type == "vehicle", Listing.active.is_(True)).group_by(Listing.subject_id)),
            ("(b) violations by plate, scoped", paged(violations_query(ViolationFilter(
                scope=SCOPE, plate=plate, plate_color=color)), Violation.detected_at, Violation.id)),
            ("(b) violations by plate, unscoped", paged(violations_query(ViolationFilter(
                scope=None, plate=plate, plate_color=color)), Violation.detected_at, Violation.id)),
            ("(c1) cases status=open, scoped", paged(cases.cases_query(scope=SCOPE, today=tz_today, status="open"),
                                                     Case.opened_at, Case.id)),
            ("(c1) cases status=open, unscoped", paged(cases.cases_query(scope=None, today=tz_today, status="open"),
                                                       Case.opened_at, Case.id)),
            ("(c1) present_cases: violations of the page", select(Violation).where(
                Violation.case_id.in_(case_ids)).order_by(Violation.detected_at, Violation.id)),
            ("(c1) present_cases: notices of the page", select(Notice).where(
                Notice.case_id.in_(case_ids)).order_by(Notice.created_at, Notice.id)),
        ]
        if deep:
            queries.append(("(c2) cases status=open page 21, scoped", paged(
                cases.cases_query(scope=SCOPE, today=tz_today, status="open"), Case.opened_at, Case.id, deep)))
        queries += [
            ("(d) cases overdue region=320200, scoped", paged(cases.cases_query(
                scope=SCOPE, today=tz_today, overdue=True, region="320200"), Case.opened_at, Case.id)),
            ("(d) cases overdue region=320200, unscoped", paged(cases.cases_query(
                scope=None, today=tz_today, overdue=True, region="320200"), Case.opened_at, Case.id)),
            ("(e) violations region+window, scoped", paged(violations_query(ViolationFilter(
                scope=SCOPE, region="320200", since=date.fromisoformat(win["from"]),
                until=date.fromisoformat(win["to"]), tz=tz)), Violation.detected_at, Violation.id)),
            ("(e) violations region+window, unscoped", paged(violations_query(ViolationFilter(
                scope=None, region="320200", since=date.fromisoformat(win["from"]),
                until=date.fromisoformat(win["to"]), tz=tz)), Violation.detected_at, Violation.id)),
            ("(e2) violations region+old window, scoped", paged(violations_query(ViolationFilter(
                scope=SCOPE, region="320200", since=date.fromisoformat(win["old_from"]),
                until=date.fromisoformat(win["old_to"]), tz=tz)), Violation.detected_at, Violation.id)),
        ]
        plans = {}
        explained = [(label, sql(stmt), None) for label, stmt in queries] + self.supervision_statements()
        for label, text, params in explained:
            rows = self.q("EXPLAIN (ANALYZE, BUFFERS) " + text, params)  # I/O timings too: track_io_timing
            plan = [r[0] for r in rows]
            nodes = [ln for ln in plan if "->" in ln or ln == plan[0] or "Execution Time" in ln]
            seq = [ln.strip() for ln in plan if "Seq Scan on" in ln and any(f" {t} " in ln + " " for t in BIG_TABLES)]
            plans[label] = {"sql": text, "plan": plan, "nodes": nodes, "seq_scans_of_big_tables": seq}
            print(f"\n=== {label}\n{text}\n" + "\n".join(plan), flush=True)
            if seq:
                print(f"!!! sequential scan of a big table: {seq}", flush=True)
        self.results["explain"] = plans

    def supervision_statements(self) -> list[tuple[str, str, Any]]:
        """Every statement `stats.supervision` runs for last month's figures of the scoped police
        user, as the driver received it (with its parameters), timed apart."""
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        from core.db import make_engine
        from core.settings import Policy
        from enforcement import stats

        tz = __import__("zoneinfo").ZoneInfo(TZ)
        month = (datetime.now(UTC).astimezone(tz).date().replace(day=1) - timedelta(days=1)).replace(day=1)
        engine = make_engine(self.args.database_url)
        seen: list[tuple[str, Any, float]] = []
        started: list[float] = []

        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            started.append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            seen.append((statement, parameters, (time.perf_counter() - started.pop()) * 1000))

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        try:
            with Session(engine) as session:
                stats.supervision(session, month, None, SCOPE, tz, Policy())
        finally:
            engine.dispose()
        log(f"stats.supervision ran {len(seen)} statements: "
            + ", ".join(f"{ms:.0f}" for _, _, ms in seen) + " ms")
        return [(f"(f3) supervision statement {k + 1} ({ms:.0f} ms)", text, params)
                for k, (text, params, ms) in enumerate(seen) if text.lstrip().upper().startswith("SELECT")]

    def run(self) -> None:
        try:
            self.setup()
            self.generate()
            if not self.args.generate_only:
                if not self.args.no_http:
                    self.measure()
                self.late_judge()
                self.explain()
        finally:
            self.stop_all()
            self.results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            self.load("end")
            if self.args.out:
                Path(self.args.out).write_text(json.dumps(self.results, indent=1, default=str))
                log(f"results written to {self.args.out}")
            shutil.rmtree(self.logdir, ignore_errors=True) if not self.procs else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="the app's (nothing is enqueued)")
    p.add_argument("--reset-schema", action="store_true", help="drop schema public first: only for a bench database")
    p.add_argument("--vehicles", type=int, default=120_000, help="at most 200,000")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--violations", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=500, help="requests per query and user")
    p.add_argument("--gunicorn-workers", type=int, default=2)
    p.add_argument("--generate-only", action="store_true")
    p.add_argument("--no-http", action="store_true", help="only the late-upload judge and the EXPLAINs")
    p.add_argument("--warm", action="store_true",
                   help="read the tables that do not grow with the events into the page cache before measuring")
    p.add_argument("--out", default=str(REPO / "tests/benchmarks/bench_queries_results.json"))
    args = p.parse_args()
    Bench(args).run()


if __name__ == "__main__":
    main()
