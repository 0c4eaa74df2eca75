"""Late uploads through the real judge: revisions, withdrawals and their consequences, run resets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditRecord
from enforcement.models import Case, Listing, Violation
from tests.factories import CST, event, vehicle
from tests.integration.test_cases import Loop

EVENTS = "/api/v1/remote-sensing/events"
HIGH = {"no_ppm": 1700}
LOW = {"no_ppm": 500}
T0 = datetime.now(CST).replace(microsecond=0) - timedelta(hours=12)


@pytest.fixture()
def loop(client: Any, login: Any, runner: Any) -> Loop:
    return Loop(client, login, runner)


def post(station: Any, drain: Any, name: str, hours: float, measurements: dict) -> int:
    r = station.post_json(EVENTS, event(name, at=T0 + timedelta(hours=hours), measurements=measurements))
    assert r.status_code == 202, r.get_json()
    drain()
    return r.get_json()["id"]


def view(station: Any, pk: int) -> dict:
    return station.get(f"{EVENTS}/{pk}").get_json()


def violations(app: Any) -> list[Violation]:
    with app.extensions["lantian"].sessions() as s:
        return list(s.scalars(select(Violation).order_by(Violation.id)))


def audit_actions(app: Any) -> list[str]:
    with app.extensions["lantian"].sessions() as s:
        return list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


def test_late_exceedance_completes_a_run_as_a_revision(app, station, drain):
    later = post(station, drain, "later", 2, HIGH)
    late = post(station, drain, "late", 0, HIGH)
    first = view(station, later)
    # The first verdict stays as decided; the re-judgement is a revision naming its cause.
    assert (first["judged"], first["warnings"], first["violation_id"]) == ([], ["no_ppm"], None)
    [rev] = first["revisions"]
    [v] = violations(app)
    assert (rev["cause_event"], rev["judged"], rev["warnings"], rev["violation_ids"], rev["withdrawn"]) == (
        late, ["no_ppm"], [], [v.id], [])
    assert rev["policy"]["digest"] == app.extensions["lantian"].settings.policy.digest
    assert v.details["events"] == [late, later] and v.details["pollutants"] == ["no_ppm"]
    assert view(station, late)["revisions"] == [] and view(station, late)["warnings"] == ["no_ppm"]
    assert "verdict.revised" in audit_actions(app)


def test_late_pass_withdraws_the_violation_and_closes_its_case(app, station, drain, client, login):
    post(station, drain, "a", 0, HIGH)
    b = post(station, drain, "b", 4, HIGH)
    [v] = violations(app)
    assert v.status == "active" and view(station, b)["violation_id"] == v.id
    p = post(station, drain, "pass", 2, LOW)
    [v] = violations(app)
    assert (v.status, v.withdrawn_reason, v.withdrawn_by_event) == ("withdrawn", "rule_no_longer_met", p)
    first = view(station, b)
    assert first["judged"] == ["no_ppm"] and first["violation_id"] == v.id  # the first verdict is kept
    assert [(r["judged"], r["warnings"], r["withdrawn"], r["cause_event"]) for r in first["revisions"]] == [
        ([], ["no_ppm"], [v.id], p)]
    police = login("police")
    assert client.get("/api/v1/violations", headers=police).get_json()["items"] == []
    listed = client.get("/api/v1/violations?status=withdrawn", headers=police).get_json()["items"]
    assert [(x["id"], x["status"], x["withdrawn_by_event"]) for x in listed] == [(v.id, "withdrawn", p)]
    with app.extensions["lantian"].sessions() as s:
        case = s.get(Case, v.case_id)
        assert (case.status, case.closed_reason) == ("closed", "withdrawn")
    actions = audit_actions(app)
    assert {"violation.withdrawn", "case.violation_withdrawn", "case.closed"} <= set(actions)


def test_one_exceedance_grounds_one_violation(app, station, drain):
    a = post(station, drain, "a", 0, HIGH)
    c = post(station, drain, "c", 4, HIGH)
    b = post(station, drain, "b", 2, HIGH)  # now a+b is the run; c starts a new one
    by_ref = {v.source_ref: v for v in violations(app)}
    assert by_ref[str(c)].status == "withdrawn" and by_ref[str(b)].status == "active"
    assert by_ref[str(b)].details["events"] == [a, b]
    assert sum(v.status == "active" for v in by_ref.values()) == 1


def test_withdrawn_violation_is_reinstated_when_supported_again(app, station, drain):
    post(station, drain, "a", 0, HIGH)
    b = post(station, drain, "b", 6, HIGH)
    post(station, drain, "pass", 2, LOW)  # withdraws b's violation
    x = post(station, drain, "x", 4, HIGH)  # x+b is a run again
    [v] = violations(app)
    assert (v.source_ref, v.status, v.withdrawn_reason) == (str(b), "active", None)
    assert v.details["events"] == [x, b]
    revs = view(station, b)["revisions"]
    assert [(r["judged"], r["violation_ids"], r["withdrawn"]) for r in revs] == [
        ([], [], [v.id]), (["no_ppm"], [v.id], [])]


def test_penalty_on_a_withdrawn_violation_is_flagged(app, station, drain, loop):
    post(station, drain, "a", 0, HIGH)
    post(station, drain, "b", 4, HIGH)
    [v] = violations(app)
    assert loop.penalty(v.case_id).status_code == 201
    post(station, drain, "pass", 2, LOW)
    with app.extensions["lantian"].sessions() as s:
        case = s.get(Case, v.case_id)
        assert case.review_required == [{"reason": "penalty_on_withdrawn_violation", "violation_id": v.id}]
        assert (case.status, case.closed_reason) == ("closed", "withdrawn")


def test_case_with_another_active_violation_stays_open(app, station, drain, loop):
    post(station, drain, "a", 0, HIGH)
    post(station, drain, "b", 4, HIGH)
    loop.open_case(tested_at=(T0 + timedelta(hours=5)).isoformat())  # a road check joins the case
    post(station, drain, "pass", 2, LOW)
    with app.extensions["lantian"].sessions() as s:
        case = s.scalars(select(Case)).one()
        assert case.status == "open" and case.closed_reason is None


def test_listing_whose_evidence_no_longer_meets_its_rule_is_flagged(app, station, drain, loop, client, login):
    registered = vehicle(inspection_cycle={"last_on": (T0 - timedelta(days=30)).date().isoformat(),
                                           "next_due_on": (T0 + timedelta(days=300)).date().isoformat()})
    assert client.put("/api/v1/registry/vehicles", json={"vehicles": [registered]},
                      headers=login("admin")).status_code == 200
    for days in (3, 2):  # two road checks on earlier days: two strikes
        loop.open_case(tested_at=(T0 - timedelta(days=days)).isoformat())
    post(station, drain, "a", 0, HIGH)
    post(station, drain, "b", 4, HIGH)  # the third strike: listed
    with app.extensions["lantian"].sessions() as s:
        entry = s.scalars(select(Listing)).one()
        assert entry.active and not entry.review_required
    post(station, drain, "pass", 2, LOW)
    with app.extensions["lantian"].sessions() as s:
        entry = s.scalars(select(Listing)).one()
        assert entry.active and entry.review_required  # flagged for a person, never silently withdrawn
    assert "listing.review_required" in audit_actions(app)


def _close_by_retest(loop: Loop, case_id: int, repaired_h: float, tested_h: float) -> None:
    assert loop.penalty(case_id).status_code == 201
    assert loop.repair(completed_at=(T0 + timedelta(hours=repaired_h)).isoformat()).status_code == 201
    r = loop.client.post("/api/v1/retests", headers=loop.inspector, json={
        "plate": "苏B12345", "plate_color": "yellow", "tested_at": (T0 + timedelta(hours=tested_h)).isoformat(),
        "method": "lug_down", "results": {"opacity_pct": 8.0}, "passed": True})
    assert r.status_code == 201, r.get_json()


def test_verified_repair_ends_every_run(app, station, drain, loop):
    post(station, drain, "a", 0, HIGH)  # a warning
    case_id = loop.open_case(tested_at=(T0 + timedelta(hours=1)).isoformat())
    _close_by_retest(loop, case_id, 2, 3)
    drain()
    c = post(station, drain, "c", 4, HIGH)
    assert (view(station, c)["judged"], view(station, c)["warnings"]) == ([], ["no_ppm"])  # a first offence again


def test_a_reset_recorded_after_later_events_rejudges_them(app, station, drain, loop):
    post(station, drain, "a", 0, HIGH)
    c = post(station, drain, "c", 4, HIGH)  # judged with a
    case_id = loop.open_case(tested_at=(T0 + timedelta(hours=1)).isoformat())
    _close_by_retest(loop, case_id, 2, 3)  # the repair was verified before c was measured
    drain()
    rs = [v for v in violations(app) if v.source == "remote_sensing"]
    assert [(v.source_ref, v.status) for v in rs] == [(str(c), "withdrawn")]
    [rev] = view(station, c)["revisions"]
    assert rev["judged"] == [] and rev["cause_event"] is None and rev["cause_reset"] is not None
