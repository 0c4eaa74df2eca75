"""Each migration upgrades a database made by the one before it, holding data, and keeps that data."""

from __future__ import annotations

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
