"""POST /violations/{id}/correction: a person moves a violation to the vehicle they read, and
the strikes, cases and listings of both vehicles follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditRecord
from core.registry import Vehicle
from enforcement.models import Case, Listing, Penalty, Strike, Violation, ViolationCorrection
from tests.factories import event, vehicle
from tests.integration.test_blacklist import d, put_fleets, put_vehicles, uscc, violate
from tests.integration.test_judgement_over_time import EVENTS, HIGH, LOW, T0, view

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


def _timeline_grounding(app: Any, plate: str) -> set[int]:
    """The events that ground a violation by the fold of the rule over the vehicle's timeline
    as stored (valid measurements that are in it), in measurement order."""
    from remote_sensing import judgement, limits
    from remote_sensing.models import Event

    rt = app.extensions["lantian"]
    with rt.sessions() as s:
        vid = s.scalar(select(Vehicle.id).where(Vehicle.plate == plate))
        rows = s.scalars(select(Event).where(Event.vehicle_id == vid, Event.valid.is_(True),
                                             Event.runs.is_not(None))).all()
        timeline = sorted((judgement.Measurement(e.measured_at, e.id,
                                                 frozenset(limits.measured_of(e.limits, e.payload["measurements"])),
                                                 frozenset(e.exceeded)) for e in rows), key=judgement.order_key)
    return {s.item.id for s in judgement.replay(timeline, None, rt.settings.policy, rt.tz) if s.judgement.judged}


def _active_refs(app: Any, plate: str) -> set[int]:
    with app.extensions["lantian"].sessions() as s:
        vid = s.scalar(select(Vehicle.id).where(Vehicle.plate == plate))
        return {int(v.source_ref) for v in s.scalars(select(Violation).where(
            Violation.vehicle_id == vid, Violation.status == "active", Violation.source == "remote_sensing"))}


def test_a_corrected_run_moves_with_its_violation_and_late_uploads_leave_it_alone(app, client, two, officer,
                                                                                  station, drain):
    def up(name: str, hours: float, measurements: dict, plate: str = A) -> int:
        body = event(name, at=T0 + timedelta(hours=hours), plate=plate, measurements=measurements)
        r = station.post_json(EVENTS, body)
        assert r.status_code == 202, r.get_json()
        drain()
        return r.get_json()["id"]

    x0, x2 = up("x0", 0, HIGH), up("x2", 2, HIGH)
    up("x6", 6, HIGH)
    assert x2 in _active_refs(app, A) and _active_refs(app, A) == _timeline_grounding(app, A)
    with app.extensions["lantian"].sessions() as s:
        v = s.scalars(select(Violation).where(Violation.source_ref == str(x2))).one()
        assert v.details["events"] == [x0, x2]
    r = correct(client, officer, v.id)
    assert r.status_code == 201, r.get_json()
    drain()  # the old vehicle's later measurements are re-judged without the moved ones
    # The events keep their first verdicts (the plate as read and its match) and are the evidence.
    assert view(station, x2)["vehicle"] == {"plate": A, "plate_color": "yellow", "match": "exact"}
    evidence = client.get(f"/api/v1/violations/{v.id}", headers=officer).get_json()["evidence"]
    assert [e["id"] for e in evidence["events"]] == [x0, x2]
    # x6 leaned on x0 and x2: alone on A it is a first warning now.
    assert _active_refs(app, A) == _timeline_grounding(app, A) == set()
    # Late uploads for A that would have broken the corrected run (a pass at 1 h) or joined it
    # (an exceedance at 2.5 h), and one (4 h) that completes a run of A's own (2.5 h, 4 h).
    up("late-pass", 1, LOW)
    completes = up("late-high", 4, HIGH)
    up("late-high-2", 2.5, HIGH)
    with app.extensions["lantian"].sessions() as s:
        again = s.get(Violation, v.id)
        b_id = s.scalar(select(Vehicle.id).where(Vehicle.plate == B))
        assert (again.status, again.vehicle_id, again.case_id) == ("active", b_id, r.get_json()["violation"]["case_id"])
        # Nothing grounded twice: x0 and x2 ground the corrected violation only.
        refs = [int(x.source_ref) for x in s.scalars(select(Violation).where(Violation.source == "remote_sensing"))]
        assert refs.count(x2) == 1 and x0 not in refs
    assert _active_refs(app, A) == _timeline_grounding(app, A) == {completes}
    # B's history is its own: the fold over its timeline, and the violation a person put there.
    assert _active_refs(app, B) == _timeline_grounding(app, B) | {x2} == {x2}
    up("y8", 8, HIGH, B)
    assert _active_refs(app, B) == _timeline_grounding(app, B) | {x2} == {x2}


def test_after_correcting_the_latest_run_the_next_measurement_continues_from_before_it(app, client, two, officer,
                                                                                      station, drain):
    def up(name: str, hours: float, measurements: dict) -> int:
        r = station.post_json(EVENTS, event(name, at=T0 + timedelta(hours=hours), plate=A, measurements=measurements))
        assert r.status_code == 202, r.get_json()
        drain()
        return r.get_json()["id"]

    smoky = {"opacity_pct": 40.0, "no_ppm": 500}
    up("o0", 0, smoky)  # an opacity run begins
    up("x1", 1, HIGH)  # NO over the limit, opacity passes: the opacity run breaks
    x2 = up("x2", 2, HIGH)  # the vehicle's latest item grounds the NO violation
    with app.extensions["lantian"].sessions() as s:
        v = s.scalars(select(Violation).where(Violation.source_ref == str(x2))).one()
    assert correct(client, officer, v.id).status_code == 201
    drain()
    # Live traffic: without x1 and x2 the opacity run of o0 stands, so this completes it.
    o3 = up("o3", 3, smoky)
    assert view(station, o3)["judged"] == ["opacity_pct"]
    assert _active_refs(app, A) == _timeline_grounding(app, A) == {o3}
