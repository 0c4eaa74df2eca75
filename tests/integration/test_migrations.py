"""Each migration upgrades a database made by the one before it, holding data, and keeps that data."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tests.migration_db import connect, scratch_database, upgrade

NOW = "2026-11-20 04:00:00"


@pytest.fixture()
def scratch(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        yield url


def _seed_0005(conn) -> None:
    conn.execute(text(f"INSERT INTO fleets (id, code, name, region, updated_at) "
                      f"VALUES (1, '91320200MA1XXXXXX1', 'F', '320200', '{NOW}')"))
    conn.execute(text(
        "INSERT INTO vehicles (id, plate, plate_color, plate_key, registered, region, fleet_id, use_nature, "
        f"fuel_type, created_at, updated_at) VALUES (1, '苏B12345', 'yellow', 'K', true, '320281', 1, 'operating', "
        f"'diesel', '{NOW}', '{NOW}')"))
    conn.execute(text(
        "INSERT INTO stations (id, code, kind, region, calibrated_until, suspended, key_id, secret, created_at) "
        f"VALUES (1, 'RS1', 'remote_sensing', '320200', '2027-11-20', false, 'k', 's', '{NOW}')"))
    conn.execute(text(
        "INSERT INTO cases (id, vehicle_id, status, region, opened_at, repaired, penalty_settled) "
        f"VALUES (1, 1, 'closed', '320281', '{NOW}', true, true), (2, 1, 'open', '320281', '{NOW}', false, false)"))
    conn.execute(text(
        "INSERT INTO violations (id, vehicle_id, source, source_ref, detected_at, detected_on, region, details, "
        f"case_id, created_at) VALUES (1, 1, 'road_check', '1', '{NOW}', '2026-11-20', '320281', '{{}}', 2, '{NOW}')"))
    conn.execute(text(
        "INSERT INTO penalties (id, case_id, waived, issued_at, issued_by, created_at) "
        f"VALUES (1, 1, true, '{NOW}', 'p', '{NOW}')"))
    conn.execute(text(
        "INSERT INTO listings (id, list_kind, subject_type, subject_id, rule, period_start, listed_at, evidence, "
        f"active, basis) VALUES (1, 'blacklist', 'vehicle', 1, 'three_strikes', '2026-01-01', '{NOW}', '[1]', "
        "true, 'cycle')"))


def test_0006_keeps_violations_cases_and_listings(scratch):
    upgrade(scratch, "0005")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0006")
    with connect(scratch) as conn:
        v = conn.execute(text("SELECT status, vehicle_region, fleet_id, use_nature, case_id FROM violations")).one()
        assert tuple(v) == ("active", "320281", 1, "operating", 2)
        cases = conn.execute(text("SELECT id, status, closed_reason, retest_passed FROM cases ORDER BY id")).all()
        assert [(c[0], c[1], c[2], bool(c[3])) for c in cases] == [
            (1, "closed", "retest_passed", True), (2, "open", None, False)]
        listing = conn.execute(text("SELECT active, review_required, evidence FROM listings")).one()
        assert (bool(listing[0]), bool(listing[1])) == (True, False) and "1" in str(listing[2])
        assert bool(conn.execute(text("SELECT waived FROM penalties")).scalar_one())
        calibrated_from = conn.execute(text("SELECT calibrated_from FROM stations")).scalar_one()
        assert str(calibrated_from)[:10] == (date(2026, 11, 20) - timedelta(days=730)).isoformat()


def test_0007_judge_keeps_first_verdicts_and_run_state(scratch):
    upgrade(scratch, "0006")
    with connect(scratch) as conn:
        _seed_0005(conn)
        conn.execute(text("INSERT INTO policies (digest, version, body, first_used_at) "
                          f"VALUES ('p1', '2026.11', '{{}}', '{NOW}')"))
        # A run in progress of no_ppm (count 1 at event 10, carried by event 11 that did not
        # measure it), and co_pct judged at event 12.
        rows = [
            (10, "2026-11-20 01:00:00", '{"no_ppm": {"count": 1, "first": "2026-11-20T09:00:00+08:00"}}', "[]",
             '["no_ppm"]'),
            (11, "2026-11-20 03:00:00", '{"no_ppm": {"count": 1, "first": "2026-11-20T09:00:00+08:00"}}', "[]", "[]"),
            (12, "2026-11-20 05:00:00", '{"no_ppm": {"count": 1, "first": "2026-11-20T09:00:00+08:00"}}',
             '["co_pct"]', "[]"),
        ]
        for pk, at, runs, judged, warnings in rows:
            conn.execute(text(
                "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, status,"
                " valid, reasons, verdict, exceeded, fuel_type, vehicle_id, runs, judged, warnings, limits,"
                f" policy_digest) VALUES ({pk}, 1, 'e{pk}', 'h', '{{}}', '{at}', '{at}', 'processed', true, '[]',"
                f" 'exceed', '[\"no_ppm\"]', 'diesel', 1, '{runs}', '{judged}', '{warnings}', '{{}}', 'p1')"))
        conn.execute(text("INSERT INTO rs_vehicle_runs (vehicle_id, event_id, measured_at, runs) VALUES "
                          f"(1, 12, '2026-11-20 05:00:00', '{rows[2][2]}')"))
    upgrade(scratch, "0007_judge")
    with connect(scratch) as conn:
        first = conn.execute(text(
            "SELECT id, verdict, judged, warnings, policy_digest FROM rs_events ORDER BY id")).all()
        assert [(r[0], r[1], r[4]) for r in first] == [(10, "exceed", "p1"), (11, "exceed", "p1"),
                                                        (12, "exceed", "p1")]
        assert ["co_pct" in str(r[2]) for r in first] == [False, False, True]
        runs = {pk: json.loads(r) if isinstance(r, str) else r
                for pk, r in conn.execute(text("SELECT id, runs FROM rs_events"))}
        member = ["2026-11-20T09:00:00+08:00", 10]
        assert runs[10] == {"no_ppm": {"members": [member], "last": member[0]}}
        assert runs[11] == runs[10]  # carried over, not a second member
        assert runs[12] == {"no_ppm": {"members": [member], "last": member[0]},
                            "co_pct": {"members": [], "last": "2026-11-20T13:00:00+08:00"}}
        latest = conn.execute(text("SELECT runs FROM rs_vehicle_runs")).scalar_one()
        assert (json.loads(latest) if isinstance(latest, str) else latest) == runs[12]
        assert conn.execute(text("SELECT count(*) FROM rs_verdict_revisions")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM rs_run_resets")).scalar_one() == 0


def test_0009_plates_opens_an_interval_for_each_suspended_station(scratch):
    upgrade(scratch, "0008_security")
    with connect(scratch) as conn:
        _seed_0005(conn)
        conn.execute(text(
            "INSERT INTO stations (id, code, kind, region, calibrated_until, calibrated_from, suspended, key_id, "
            f"secret, created_at) VALUES (2, 'RS2', 'remote_sensing', '320200', '2027-11-20', '2024-11-20', true, "
            f"'k2', 's2', '{NOW}'), (3, 'RS3', 'remote_sensing', '320200', '2027-11-20', '2024-11-20', true, 'k3', "
            f"'s3', '{NOW}')"))
        conn.execute(text(
            "INSERT INTO audit_records (id, at, actor, action, subject_type, subject_id, data, prev_hash, hash) "
            "VALUES (1, '2026-11-01 02:00:00', 'cli', 'station.suspended', 'station', 'RS2', '{}', '0', 'a'), "
            "(2, '2026-11-03 02:00:00', 'cli', 'station.suspended', 'station', 'RS2', '{}', 'a', 'b')"))
    upgrade(scratch, "0009_plates")
    with connect(scratch) as conn:
        rows = conn.execute(text("SELECT station_id, from_at, until_at FROM station_suspensions ORDER BY station_id"))
        rows = rows.all()
        assert [(r[0], r[2]) for r in rows] == [(2, None), (3, None)]  # RS1 was not suspended
        assert str(rows[0][1])[:19] == "2026-11-03 02:00:00"  # its latest suspension
        assert rows[1][1] is not None  # no record of when: from the upgrade
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == 3
        v = conn.execute(text("SELECT vehicle_id, status, case_id FROM violations")).one()
        assert tuple(v) == (1, "active", 2)
        for table in ("violation_corrections", "suspected_clones"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_0010_registry_makes_the_current_row_the_first_version_and_cycle(scratch):
    upgrade(scratch, "0009_plates")
    with connect(scratch) as conn:
        _seed_0005(conn)
        conn.execute(text("UPDATE vehicles SET cycle_last_on = '2026-03-10', cycle_next_due_on = '2027-03-10', "
                          "registered_on = '2019-05-01'"))
        conn.execute(text(
            "INSERT INTO vehicles (id, plate, plate_color, plate_key, registered, region, created_at, updated_at) "
            f"VALUES (2, '苏E99999', 'blue', 'K2', false, '320500', '{NOW}', '{NOW}')"))  # provisional
        conn.execute(text("INSERT INTO strikes (id, vehicle_id, day, violation_id) VALUES (1, 1, '2026-11-20', 1)"))
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        versions = conn.execute(text(
            "SELECT vehicle_id, valid_from, fleet_id, use_nature, fuel_type, region FROM vehicle_versions")).all()
        assert [(r[0], str(r[1])[:10], *r[2:]) for r in versions] == [
            (1, "2019-05-01", 1, "operating", "diesel", "320281")]
        cycles = conn.execute(text("SELECT vehicle_id, last_on, next_due_on FROM inspection_cycles")).all()
        assert [(r[0], str(r[1])[:10], str(r[2])[:10]) for r in cycles] == [(1, "2026-03-10", "2027-03-10")]
        v = conn.execute(text("SELECT vehicle_id, status, case_id, fleet_id FROM violations")).one()
        assert tuple(v) == (1, "active", 2, None)  # as seeded: its facts at detection are not rewritten
        assert conn.execute(text("SELECT count(*) FROM strikes")).scalar_one() == 1
        listing = conn.execute(text("SELECT active, evidence FROM listings")).one()
        assert bool(listing[0]) and "1" in str(listing[1])
        assert conn.execute(text("SELECT count(*) FROM vehicles")).scalar_one() == 2


def test_0011_jurisdiction_moves_each_violation_to_where_it_was_detected(scratch):
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)  # violation 1: a road check of a 320281 vehicle
        conn.execute(text(
            "INSERT INTO supervisory_tests (id, vehicle_id, kind, method, tested_at, results, passed, region, "
            f"recorded_by, created_at) VALUES (1, 1, 'road_check', 'free_acceleration', '{NOW}', '{{}}', false, "
            f"'320205', 'u', '{NOW}'), (2, 1, 'road_check', 'lug_down', '{NOW}', '{{}}', false, NULL, 'u', '{NOW}')"))
        conn.execute(text(
            "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, status)"
            f" VALUES (10, 1, 'e10', 'h', '{{}}', '{NOW}', '{NOW}', 'processed')"))
        conn.execute(text(
            "INSERT INTO violations (id, vehicle_id, source, source_ref, detected_at, detected_on, region, "
            "vehicle_region, details, case_id, created_at, status) VALUES "
            f"(2, 1, 'remote_sensing', '10', '{NOW}', '2026-11-20', '320281', '320281', '{{}}', 2, '{NOW}', 'active'),"
            f"(3, 1, 'road_check', '2', '{NOW}', '2026-11-20', '320281', '320281', '{{}}', 2, '{NOW}', 'active')"))
    upgrade(scratch, "0011_jurisdiction")
    with connect(scratch) as conn:
        rows = conn.execute(text("SELECT id, region, vehicle_region FROM violations ORDER BY id")).all()
        # The test's region, the station's; a test recorded without a region keeps what it had.
        assert [tuple(r) for r in rows] == [(1, "320205", None), (2, "320200", "320281"), (3, "320281", "320281")]


def test_0012_evidence_json_keeps_every_violation_and_keep_evidence_fills_it(scratch):
    from sqlalchemy.orm import Session

    from core.db import make_engine
    from enforcement import evidence

    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)  # violation 1: a road check (test 1)
        conn.execute(text(
            "INSERT INTO supervisory_tests (id, vehicle_id, kind, method, tested_at, results, passed, region, "
            f"recorded_by, created_at) VALUES (1, 1, 'road_check', 'free_acceleration', '{NOW}', "
            f"'{{\"opacity_m1\": 2.1}}', false, '320205', 'u', '{NOW}')"))
    upgrade(scratch, "0011_jurisdiction")
    with connect(scratch) as conn:
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM violations ORDER BY id"))]
    upgrade(scratch, "0012_evidence_json")
    with connect(scratch) as conn:
        after = conn.execute(text("SELECT * FROM violations ORDER BY id")).mappings().all()
    assert [tuple(v for k, v in r.items() if k != "evidence_json") for r in after] == before
    assert [r["evidence_json"] for r in after] == [None]  # read assembled until kept
    engine = make_engine(scratch)
    try:
        with Session(engine) as s, s.begin():
            assert evidence.keep_missing(s, 0, 10) == (1, 1)
        with Session(engine) as s, s.begin():
            assert evidence.keep_missing(s, 1, 10) == (0, 1)
            (doc,) = evidence.kept(s, [1]).values()
    finally:
        engine.dispose()
    test = json.loads(doc)["test"]
    assert (test["id"], test["kind"], test["results"], test["region"]) == (1, "road_check", {"opacity_m1": 2.1},
                                                                            "320205")


def test_0013_claim_shards_keeps_every_event_and_waiting_ones_are_still_claimed(scratch):
    from sqlalchemy.orm import Session

    from core.db import make_engine
    from remote_sensing import processing

    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0012_evidence_json")
    with connect(scratch) as conn:
        conn.execute(text(
            "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, status)"
            f" VALUES (10, 1, 'e10', 'h', '{{}}', '{NOW}', '{NOW}', 'processed'),"
            f" (11, 1, 'e11', 'h', '{{\"plate\": {{\"number\": \"苏B12345\"}}}}', '{NOW}', '{NOW}', 'received')"))
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))]
    upgrade(scratch, "0013_claim_shards")
    with connect(scratch) as conn:
        after = conn.execute(text("SELECT * FROM rs_events ORDER BY id")).mappings().all()
    assert [tuple(v for k, v in r.items() if k != "claim_shard") for r in after] == before
    assert [r["claim_shard"] for r in after] == [0, 0]
    engine = make_engine(scratch)
    try:
        with Session(engine) as s, s.begin():
            assert [e.id for e in processing.claim_pending(s, 10)] == [11]
    finally:
        engine.dispose()


def test_0014_event_partitions_keeps_every_event_key_and_revision(scratch):
    from sqlalchemy.orm import Session

    from core.db import make_engine
    from remote_sensing import ingest
    from tests.factories import event

    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0013_claim_shards")
    with connect(scratch) as conn:
        conn.execute(text("INSERT INTO policies (digest, version, body, first_used_at) "
                          f"VALUES ('p1', '2026.11', '{{}}', '{NOW}')"))
        for pk, at, status in ((10, "2024-05-31 23:59:59", "processed"), (11, NOW, "processed"),
                               (12, NOW, "received")):
            conn.execute(text(
                "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at,"
                f" status, verdict, judged) VALUES ({pk}, 1, 'e{pk}', 'h{pk}', '{{}}', '{at}', '{NOW}', '{status}',"
                f" 'exceed', '[\"no_ppm\"]')"))
        conn.execute(text(
            "INSERT INTO rs_verdict_revisions (id, event_id, rev, at, judged, warnings, violation_ids, withdrawn,"
            f" policy_digest) VALUES (1, 10, 1, '{NOW}', '[]', '[]', '[]', '[1]', 'p1')"))
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))]
    upgrade(scratch, "0014_event_partitions")
    with connect(scratch) as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))] == before
        keys = conn.execute(text("SELECT id, station_id, event_id, measured_at FROM rs_event_keys ORDER BY id")).all()
        assert [(k[0], k[1], k[2], str(k[3])) for k in keys] == [
            (10, 1, "e10", "2024-05-31 23:59:59"), (11, 1, "e11", NOW), (12, 1, "e12", NOW)]
        assert conn.execute(text("SELECT event_id, withdrawn FROM rs_verdict_revisions")).one()[0] == 10
        if scratch.startswith("postgresql"):
            where = dict(conn.execute(text("SELECT id, CAST(tableoid::regclass AS text) FROM rs_events")).all())
            assert where == {10: "rs_events_y2024m05", 11: "rs_events_y2026m11", 12: "rs_events_y2026m11"}
    engine = make_engine(scratch)
    try:  # ingest goes on after the highest id, and the keys still refuse a replay with a new body
        with Session(engine) as s:
            outcomes = ingest.ingest(ingest.SessionStore(s), 1, [event("e12"), event("e13")], 300)
        assert [o.status for o in outcomes] == ["conflict", "received"]
        assert outcomes[0].id == 12 and outcomes[1].id > 12  # PostgreSQL's sequence may skip one
    finally:
        engine.dispose()


def test_0015_event_retention_adds_empty_counts_and_keeps_events(scratch):
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0014_event_partitions")
    with connect(scratch) as conn:
        conn.execute(text("INSERT INTO rs_event_keys (id, station_id, event_id, measured_at) "
                          f"VALUES (10, 1, 'e10', '{NOW}')"))
        conn.execute(text(
            "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, status)"
            f" VALUES (10, 1, 'e10', 'h', '{{}}', '{NOW}', '{NOW}', 'processed')"))
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events"))]
    upgrade(scratch, "0015_event_retention")
    with connect(scratch) as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events"))] == before
        for table in ("rs_event_counts", "rs_tested_vehicles", "rs_retained_months"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM violations")).scalar_one() == 1


def test_0016_snapshot_partitions_keeps_every_snapshot_key_and_suspected_clone(scratch):
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0015_event_retention")
    with connect(scratch) as conn:
        for pk, at in ((5, "2025-02-10 03:00:00"), (6, NOW)):
            conn.execute(text(
                "INSERT INTO bs_snapshots (id, station_id, event_id, body_hash, payload, images, region, captured_at,"
                f" received_at, status) VALUES ({pk}, 1, 'bs{pk}', 'h{pk}', '{{}}', '[]', '320200', '{at}', '{NOW}',"
                " 'pending_review')"))
        conn.execute(text(
            "INSERT INTO suspected_clones (id, snapshot_id, vehicle_id, region, captured_at, ringelmann, reported_by,"
            f" reported_at) VALUES (1, 5, 1, '320200', '2025-02-10 03:00:00', 3, 'r', '{NOW}')"))
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM bs_snapshots ORDER BY id"))]
    upgrade(scratch, "0016_snapshot_partitions")
    with connect(scratch) as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM bs_snapshots ORDER BY id"))] == before
        keys = conn.execute(text("SELECT id, event_id FROM bs_snapshot_keys ORDER BY id")).all()
        assert [tuple(k) for k in keys] == [(5, "bs5"), (6, "bs6")]
        assert conn.execute(text("SELECT snapshot_id FROM suspected_clones")).scalar_one() == 5
        if scratch.startswith("postgresql"):
            where = dict(conn.execute(text("SELECT id, CAST(tableoid::regclass AS text) FROM bs_snapshots")).all())
            assert where == {5: "bs_snapshots_y2025m02", 6: "bs_snapshots_y2026m11"}
            conn.execute(text("INSERT INTO bs_snapshot_keys (station_id, event_id, captured_at) "
                              f"VALUES (1, 'bs7', '{NOW}')"))
            assert conn.execute(text("SELECT max(id) FROM bs_snapshot_keys")).scalar_one() == 7


def test_0017_counts_at_verdict_counts_judged_events_after_the_retention_mark_once(scratch):
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0016_snapshot_partitions")
    # A retained month (2025-01, its count kept by retention) and, after it, judged events
    # (two in one hour, one with other reasons), a waiting one and one kept from 2025-01.
    events = ((10, "2025-01-15 03:20:00", "processed", "pass", "[]"),
              (11, "2026-11-20 04:10:00", "processed", "invalid", '["wind_too_strong"]'),
              (12, "2026-11-20 04:50:00", "processed", "invalid", '["wind_too_strong"]'),
              (13, "2026-11-20 04:55:00", "processed", "pass", "[]"),
              (14, "2026-11-20 05:01:00", "received", None, None))
    with connect(scratch) as conn:
        conn.execute(text("INSERT INTO rs_retained_months (month, at, events_counted, events_kept) "
                          f"VALUES ('2025-01-01', '{NOW}', 7, 1)"))
        conn.execute(text("INSERT INTO rs_event_counts (hour, station_id, valid, verdict, fuel_type, exceeded, "
                          "reasons, n) VALUES ('2025-01-15 03:00:00', 1, true, 'pass', 'diesel', '[]', '[]', 7)"))
        for pk, at, status, verdict, reasons in events:
            conn.execute(text("INSERT INTO rs_event_keys (id, station_id, event_id, measured_at) "
                              f"VALUES ({pk}, 1, 'e{pk}', '{at}')"))
            conn.execute(text(
                "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, "
                "status, valid, verdict, fuel_type, exceeded, reasons) VALUES (:pk, 1, :eid, 'h', '{}', :at, :at, "
                ":status, :valid, :verdict, 'diesel', :exceeded, :reasons)"),
                {"pk": pk, "eid": f"e{pk}", "at": at, "status": status, "verdict": verdict,
                 "valid": None if verdict is None else verdict != "invalid",
                 "exceeded": None if verdict is None else "[]", "reasons": reasons})
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))]
    upgrade(scratch, "0017_counts_at_verdict")
    with connect(scratch) as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))] == before
        rows = conn.execute(text("SELECT hour, verdict, reasons, n, merged FROM rs_event_counts "
                                 "ORDER BY hour, verdict")).all()
        got = [(str(h)[:19], v, json.loads(r) if isinstance(r, str) else r, n, bool(m)) for h, v, r, n, m in rows]
        assert got == [("2025-01-15 03:00:00", "pass", [], 7, True),
                       ("2026-11-20 04:00:00", "invalid", ["wind_too_strong"], 2, True),
                       ("2026-11-20 04:00:00", "pass", [], 1, True)]


def test_0018_tested_months_fills_the_months_of_judged_events_and_retained_ones(scratch, monkeypatch):
    monkeypatch.setenv("LANTIAN_TIMEZONE", "Asia/Shanghai")
    upgrade(scratch, "0010_registry")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0017_counts_at_verdict")
    # Valid readings of vehicle 1 at 16:30 UTC on 31 October (1 November in Beijing) and on
    # 20 November; an invalid one, a waiting one and an unmatched one count nobody; a
    # retained month (2025-01) kept its tested vehicle by UTC hour.
    events = ((10, "2026-10-31 16:30:00", "processed", True, 1), (11, "2026-11-20 04:10:00", "processed", True, 1),
              (12, "2026-09-20 04:10:00", "processed", False, 1), (13, "2026-09-21 04:10:00", "received", None, 1),
              (14, "2026-09-22 04:10:00", "processed", True, None))
    with connect(scratch) as conn:
        for pk, at, status, valid, vehicle_id in events:
            conn.execute(text("INSERT INTO rs_event_keys (id, station_id, event_id, measured_at) "
                              f"VALUES ({pk}, 1, 'e{pk}', '{at}')"))
            conn.execute(text(
                "INSERT INTO rs_events (id, station_id, event_id, body_hash, payload, measured_at, received_at, "
                "status, valid, vehicle_id) VALUES (:pk, 1, :eid, 'h', '{}', :at, :at, :status, :valid, :vid)"),
                {"pk": pk, "eid": f"e{pk}", "at": at, "status": status, "valid": valid, "vid": vehicle_id})
        conn.execute(text("INSERT INTO rs_tested_vehicles (hour, station_id, vehicle_id) "
                          "VALUES ('2025-01-31 15:00:00', 1, 1), ('2025-01-31 16:00:00', 1, 1)"))
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))]
    upgrade(scratch, "0018_tested_months")
    with connect(scratch) as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM rs_events ORDER BY id"))] == before
        rows = conn.execute(text("SELECT month, region, vehicle_id FROM rs_tested_months ORDER BY month")).all()
        assert [(str(m)[:10], r, v) for m, r, v in rows] == [
            ("2025-01-01", "320200", 1), ("2025-02-01", "320200", 1), ("2026-11-01", "320200", 1)]
