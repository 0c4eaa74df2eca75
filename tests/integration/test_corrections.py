"""POST /violations/{id}/correction: a person moves a violation to the vehicle they read, and
the strikes, cases and listings of both vehicles follow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditRecord
from core.registry import Vehicle
from enforcement.models import Case, Listing, Penalty, Strike, Violation, ViolationCorrection
from tests.factories import vehicle
from tests.integration.test_blacklist import d, put_fleets, put_vehicles, uscc, violate

A, B = "苏B11111", "苏B22222"


@pytest.fixture()
def admin(login: Any) -> dict:
    return login("admin")


@pytest.fixture()
def officer(login: Any) -> dict:
    return login("env_officer", "320200", username="li")


@pytest.fixture()
def two(client, admin) -> None:
    put_vehicles(client, admin, vehicle(A), vehicle(B))


def correct(client: Any, headers: dict, violation_id: int, plate: str = B, color: str = "yellow",
            reason: str = "the image shows 苏B22222") -> Any:
    return client.post(f"/api/v1/violations/{violation_id}/correction", headers=headers,
                       json={"plate": plate, "plate_color": color, "reason": reason})


def on(app: Any, plate: str) -> dict[str, Any]:
    """A vehicle's enforcement state: its active violations, strikes (day -> violation), cases and listings."""
    with app.extensions["lantian"].sessions() as s:
        vid = s.scalar(select(Vehicle.id).where(Vehicle.plate == plate))
        return {
            "violations": sorted(s.scalars(select(Violation.id).where(Violation.vehicle_id == vid))),
            "strikes": {st.day: st.violation_id for st in s.scalars(select(Strike).where(Strike.vehicle_id == vid))},
            "cases": [(c.status, c.closed_reason, c.review_required)
                      for c in s.scalars(select(Case).where(Case.vehicle_id == vid).order_by(Case.id))],
            "listings": [(e.rule, e.active, e.review_required) for e in s.scalars(
                select(Listing).where(Listing.subject_type == "vehicle", Listing.subject_id == vid))],
        }


def everything(app: Any) -> tuple:
    with app.extensions["lantian"].sessions() as s:
        return (
            [(v.id, v.vehicle_id, v.case_id, v.status) for v in s.scalars(select(Violation).order_by(Violation.id))],
            [(c.id, c.status, c.review_required) for c in s.scalars(select(Case).order_by(Case.id))],
            [(st.vehicle_id, st.day, st.violation_id) for st in s.scalars(select(Strike).order_by(Strike.id))],
            [(e.id, e.active, e.review_required) for e in s.scalars(select(Listing).order_by(Listing.id))],
            s.scalars(select(ViolationCorrection.id)).all(), sorted(s.scalars(select(Vehicle.plate))),
            len(s.scalars(select(AuditRecord.id)).all()),
        )


def test_a_correction_moves_the_violation_and_its_consequences(app, client, two, officer):
    vid = violate(app, A, d("2026-04-01"))
    r = correct(client, officer, vid)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["from"] == {"plate": A, "plate_color": "yellow"} and body["to"] == {"plate": B, "plate_color": "yellow"}
    assert body["by"] == "user:li" and body["reason"] == "the image shows 苏B22222"
    assert body["violation"]["id"] == vid and body["violation"]["vehicle"]["plate"] == B
    assert on(app, A) == {"violations": [], "strikes": {}, "cases": [("closed", "withdrawn", [])], "listings": []}
    assert on(app, B) == {"violations": [vid], "strikes": {d("2026-04-01"): vid}, "cases": [("open", None, [])],
                          "listings": []}
    assert body["violation"]["case_id"] is not None
    with app.extensions["lantian"].sessions() as s:
        (record,) = s.scalars(select(ViolationCorrection)).all()
        a, b = (s.scalar(select(Vehicle.id).where(Vehicle.plate == p)) for p in (A, B))
        assert (record.violation_id, record.from_vehicle_id, record.to_vehicle_id) == (vid, a, b)
        actions = s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
        assert {"violation.corrected", "case.violation_moved", "case.closed", "case.opened"} <= set(actions)
    got = client.get(f"/api/v1/violations/{vid}", headers=officer).get_json()
    assert got["vehicle"]["plate"] == B and got["status"] == "active"


def test_the_old_vehicles_listing_is_flagged_and_the_new_one_is_evaluated(app, client, admin, officer):
    put_vehicles(client, admin, vehicle(A), vehicle(B))
    ids = [violate(app, A, d(day)) for day in ("2026-04-01", "2026-04-02", "2026-04-03")]
    assert on(app, A)["listings"] == [("three_strikes", True, False)]
    assert correct(client, officer, ids[0]).status_code == 201
    state = on(app, A)
    assert state["listings"] == [("three_strikes", True, True)]  # still listed: a person delists
    assert state["strikes"] == {d("2026-04-02"): ids[1], d("2026-04-03"): ids[2]}
    assert state["cases"] == [("open", None, [])]  # two violations remain on it
    assert on(app, B)["strikes"] == {d("2026-04-01"): ids[0]}
    # Two more strikes for B in its cycle list it: the moved violation counts for B now.
    violate(app, B, d("2026-04-05"))
    violate(app, B, d("2026-04-06"))
    assert on(app, B)["listings"] == [("three_strikes", True, False)]


def test_a_listing_still_met_without_the_violation_is_not_flagged(app, client, two, officer):
    ids = [violate(app, A, d(day)) for day in ("2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04")]
    assert correct(client, officer, ids[0]).status_code == 201
    assert on(app, A)["listings"] == [("three_strikes", True, False)]


def test_the_days_strike_passes_to_the_next_violation_of_that_day(app, client, two, officer):
    first, second = violate(app, A, d("2026-04-01"), 5), violate(app, A, d("2026-04-01"), 30)
    assert on(app, A)["strikes"] == {d("2026-04-01"): first}
    assert correct(client, officer, first).status_code == 201
    assert on(app, A)["strikes"] == {d("2026-04-01"): second}


def test_the_new_vehicles_open_case_is_joined(app, client, two, officer):
    theirs = violate(app, B, d("2026-04-02"))
    moved = violate(app, A, d("2026-04-01"))
    assert correct(client, officer, moved).status_code == 201
    with app.extensions["lantian"].sessions() as s:
        assert s.get(Violation, moved).case_id == s.get(Violation, theirs).case_id
    assert len(on(app, B)["cases"]) == 1


def test_a_penalty_on_the_old_case_is_flagged_for_revocation(app, client, two, officer):
    vid = violate(app, A, d("2026-04-01"))
    other = violate(app, A, d("2026-04-02"))
    with app.extensions["lantian"].sessions() as s, s.begin():
        case_id = s.get(Violation, vid).case_id
        s.add(Penalty(case_id=case_id, waived=False, decision_no="D-1", amount_yuan=200,
                      issued_at=datetime(2026, 4, 3, tzinfo=UTC), issued_by="user:police"))
    assert correct(client, officer, vid).status_code == 201
    assert on(app, A)["cases"] == [("open", None, [{"reason": "penalty_on_corrected_violation", "violation_id": vid}])]
    assert on(app, A)["violations"] == [other]


def test_a_fleet_listing_is_flagged_when_the_fleet_falls_below_ten_percent(app, client, admin, officer):
    put_fleets(client, admin, 1)
    fleet_plates = [f"苏B3{n:04d}" for n in range(10)]
    put_vehicles(client, admin, *(vehicle(p, fleet_code=uscc(1)) for p in fleet_plates), vehicle(B))
    vid = violate(app, fleet_plates[0], d("2026-04-01"))
    with app.extensions["lantian"].sessions() as s:
        (entry,) = s.scalars(select(Listing).where(Listing.subject_type == "fleet")).all()
        assert entry.evidence == [vid] and not entry.review_required
    assert correct(client, officer, vid).status_code == 201
    with app.extensions["lantian"].sessions() as s:
        entry = s.scalars(select(Listing).where(Listing.subject_type == "fleet")).one()
        assert entry.active and entry.review_required
        assert s.get(Violation, vid).fleet_id is None  # B has no fleet


def test_an_unknown_well_formed_plate_becomes_a_provisional_vehicle(app, client, two, officer):
    vid = violate(app, A, d("2026-04-01"))
    assert correct(client, officer, vid, plate="浙A 66666", color="blue").status_code == 201
    with app.extensions["lantian"].sessions() as s:
        v = s.get(Vehicle, s.get(Violation, vid).vehicle_id)
        assert (v.plate, v.plate_color, v.registered) == ("浙A66666", "blue", False)


@pytest.mark.parametrize(
    ("plate", "color", "status", "code"),
    [("ABC123", "yellow", 422, "validation_error"),  # malformed
     ("苏B2222Z", "purple", 422, "validation_error"),
     ("苏B22222", "green", 422, "plate_unreadable"),  # a 7-character plate is never green
     ("苏B2222Z", "yellow", 422, "plate_ambiguous"),  # unregistered, and only Z/2 away from 苏B22222
     (A, "yellow", 422, "same_vehicle")],
)
def test_a_bad_plate_changes_nothing(app, client, two, officer, plate, color, status, code):
    vid = violate(app, A, d("2026-04-01"))
    before = everything(app)
    r = correct(client, officer, vid, plate=plate, color=color)
    assert r.status_code == status and r.get_json()["error"]["code"] == code, r.get_json()
    assert everything(app) == before


def test_a_withdrawn_violation_cannot_be_moved(app, client, two, officer):
    vid = violate(app, A, d("2026-04-01"))
    with app.extensions["lantian"].sessions() as s, s.begin():
        s.get(Violation, vid).status = "withdrawn"
    before = everything(app)
    r = correct(client, officer, vid)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "violation_withdrawn"
    assert everything(app) == before


def test_who_may_correct(app, client, two, officer, login):
    vid = violate(app, A, d("2026-04-01"))
    police, transport, far, root = (login("police"), login("transport"), login("env_officer", "330100"),
                                    login("admin", username="root"))
    before = everything(app)
    for headers in (police, transport):
        assert correct(client, headers, vid).status_code == 403
    assert correct(client, {}, vid).status_code == 401
    assert correct(client, far, vid).status_code == 404  # outside the officer's region
    assert correct(client, officer, 999999).status_code == 404
    r = client.post(f"/api/v1/violations/{vid}/correction", headers=officer, json={"plate": B, "plate_color": "yellow"})
    assert r.status_code == 422 and "reason" in r.get_json()["error"]["fields"]
    assert everything(app) == before
    assert correct(client, root, vid).status_code == 201
