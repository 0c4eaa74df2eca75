"""Supervisory tests, the violation list and a vehicle's standing (API.md sections 3 and 6)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.registry import Vehicle
from enforcement.models import SupervisoryTest, Violation
from tests.factories import CST, vehicle
from tests.integration.test_cases import PLATE, Loop

VIOLATIONS = "/api/v1/violations"


@pytest.fixture()
def loop(client: Any, login: Any, runner: Any) -> Loop:
    return Loop(client, login, runner)


def register(client: Any, login: Any, *vehicles: dict[str, Any]) -> None:
    r = client.put("/api/v1/registry/vehicles", json={"vehicles": list(vehicles)}, headers=login("transport"))
    assert r.status_code == 200, r.get_json()


def count(app: Any, model: Any) -> int:
    with app.extensions["lantian"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- supervisory tests --------------------------------------------------------------------


def test_failed_test_creates_a_violation_with_the_test_kind(app, loop, client, login):
    register(client, login, vehicle(region="320281"))
    r = loop.supervisory_test(kind="depot_check", method="lug_down")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["passed"] is False and body["kind"] == "depot_check" and body["method"] == "lug_down"
    assert body["vehicle"] == {"plate": PLATE, "plate_color": "yellow"}
    assert isinstance(body["violation_id"], int) and isinstance(body["case_id"], int)
    items = client.get(VIOLATIONS, headers=loop.police).get_json()["items"]
    # Detected where the officer of 320200 tested it; registered in 320281.
    assert [(v["id"], v["source"], v["source_ref"], v["region"], v["vehicle_region"]) for v in items] == [
        (body["violation_id"], "depot_check", str(body["id"]), "320200", "320281")
    ]


def test_a_retried_test_is_answered_with_the_stored_one(app, loop):
    at = (datetime.now(CST) - timedelta(hours=2)).isoformat()
    first = loop.supervisory_test(tested_at=at)
    again = loop.supervisory_test(tested_at=at)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert count(app, SupervisoryTest) == 1 and count(app, Violation) == 1
    other_method = loop.supervisory_test(tested_at=at, method="lug_down")
    assert other_method.status_code == 201 and count(app, Violation) == 2


def test_the_same_test_key_with_other_results_is_a_conflict(app, loop):
    at = (datetime.now(CST) - timedelta(hours=2)).isoformat()
    assert loop.supervisory_test(tested_at=at).status_code == 201
    r = loop.supervisory_test(tested_at=at, results={"opacity_m1": 0.4}, passed=True)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "supervisory_test_conflict"
    assert count(app, SupervisoryTest) == 1 and count(app, Violation) == 1


def test_passed_test_is_just_recorded(app, loop):
    r = loop.supervisory_test(passed=True)
    assert r.status_code == 201 and r.get_json()["violation_id"] is None and r.get_json()["case_id"] is None
    assert count(app, SupervisoryTest) == 1 and count(app, Violation) == 0


def test_unknown_plate_makes_a_provisional_vehicle_in_the_officers_region(app, loop, login, client):
    r = loop.supervisory_test(plate="浙a·12345", color="blue")  # cleaned: 浙A12345
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["region"] == "320200"
    with app.extensions["lantian"].sessions() as s:
        made = s.scalars(select(Vehicle).where(Vehicle.plate == "浙A12345")).one()
        assert (made.registered, made.region, made.plate_color) == (False, "320200", "blue")
    # An officer without a region places the test where the body says.
    r = loop.supervisory_test(plate="浙A54321", headers=login("env_officer"), region="320281")
    assert r.status_code == 201 and r.get_json()["region"] == "320281"
    violation = client.get(f"{VIOLATIONS}/{r.get_json()['violation_id']}", headers=loop.police).get_json()
    assert (violation["region"], violation["vehicle_region"]) == ("320281", "320281")


def test_without_a_region_of_their_own_an_officer_tests_in_the_vehicles_region(app, loop, login, client):
    register(client, login, vehicle(region="320205"))
    r = loop.supervisory_test(headers=login("police", username="p-all"))
    assert r.status_code == 201 and r.get_json()["region"] == "320205"
    violation = client.get(f"{VIOLATIONS}/{r.get_json()['violation_id']}", headers=loop.police).get_json()
    assert violation["region"] == "320205"


def test_police_may_record_tests_and_the_region_must_be_their_own(loop, login):
    police = login("police", "320200", username="p2")
    assert loop.supervisory_test(headers=police).status_code == 201
    r = loop.supervisory_test(headers=police, region="310000")
    assert r.status_code == 422 and "region" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize("override, field", [
    ({"plate_color": "purple"}, "plate_color"),
    ({"plate": "苏B1234"}, "plate"),
    ({"kind": "remote_sensing"}, "kind"),
    ({"passed": "no"}, "passed"),
    ({"tested_at": "2026-11-22T08:00:00"}, "tested_at"),
    ({"method": ""}, "method"),
])
def test_bad_test_bodies_are_422_and_store_nothing(app, loop, override, field):
    r = loop.supervisory_test(**override)
    assert r.status_code == 422 and field in r.get_json()["error"]["fields"], r.get_json()
    assert count(app, SupervisoryTest) == 0 and count(app, Vehicle) == 0


def test_future_test_time_is_422(app, loop):
    r = loop.supervisory_test(tested_at=(datetime.now(CST) + timedelta(hours=2)).isoformat())
    assert r.status_code == 422 and "tested_at" in r.get_json()["error"]["fields"]
    assert count(app, SupervisoryTest) == 0


# --- listing violations ----------------------------------------------------------------------


def _violations_at(loop: Loop, n: int, plate: str = PLATE, **kw: Any) -> list[int]:
    """n violations of one vehicle, one per test, an hour apart, oldest first."""
    start = datetime.now(CST) - timedelta(hours=n + 1)
    ids = []
    for i in range(n):
        r = loop.supervisory_test(plate, tested_at=(start + timedelta(hours=i)).isoformat(), **kw)
        ids.append(r.get_json()["violation_id"])
    return ids


def test_pages_are_newest_first_and_stable_while_new_rows_arrive(loop, client):
    ids = _violations_at(loop, 5)
    first = client.get(f"{VIOLATIONS}?limit=2", headers=loop.police).get_json()
    assert [v["id"] for v in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    _violations_at(loop, 2, plate="苏B99999")  # newer rows arrive between pages
    rest, cursor = [], first["next_cursor"]
    while cursor:
        got = client.get(f"{VIOLATIONS}?limit=2&cursor={cursor}", headers=loop.police).get_json()
        rest += [v["id"] for v in got["items"]]
        cursor = got["next_cursor"]
    assert rest == ids[::-1][2:]


def test_limits_and_cursor_are_validated(loop, client):
    assert client.get(f"{VIOLATIONS}?limit=501", headers=loop.police).status_code == 422
    assert client.get(f"{VIOLATIONS}?limit=0", headers=loop.police).status_code == 422
    assert client.get(f"{VIOLATIONS}?limit=500", headers=loop.police).status_code == 200
    r = client.get(f"{VIOLATIONS}?cursor=garbage", headers=loop.police)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_cursor"
    assert client.get("/api/v1/cases?limit=501", headers=loop.police).status_code == 422


@pytest.mark.parametrize("forged", [
    ["x", 1], [5, 1], [{"t": "2026-01-01T00:00:00"}, 1],  # not a time; a number; a naive time
    [{"t": "2026-01-01T00:00:00+00:00"}, 2**63], [{"t": "2026-01-01T00:00:00+00:00"}, True],
])
@pytest.mark.parametrize("path", [VIOLATIONS, "/api/v1/cases"])
def test_a_cursor_not_made_for_the_listing_is_a_400(loop, client, forged, path):
    cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    r = client.get(f"{path}?cursor={cursor}", headers=loop.police)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_cursor"
    fine = base64.urlsafe_b64encode(b'[{"t": "2026-01-01T00:00:00+00:00"}, 9]').decode()
    assert client.get(f"{path}?cursor={fine}", headers=loop.police).status_code == 200


def test_dates_far_outside_the_calendar_in_use_are_422(loop, client, login):
    """Year 1 or 9999 would overflow the date arithmetic (local midnight in UTC, a day after)."""
    for query in ("from=0001-01-01", "to=9999-12-31", "from=1899-12-31"):
        r = client.get(f"{VIOLATIONS}?{query}", headers=loop.police)
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_error", query
    assert client.get(f"{VIOLATIONS}?from=1900-01-01&to=2999-12-31", headers=loop.police).status_code == 200
    assert client.get("/api/v1/stats/supervision?month=0001-01", headers=login("env_officer")).status_code == 422
    assert loop.supervisory_test(tested_at="0001-01-01T00:00:00+08:00").status_code == 422
    case_id = loop.open_case()
    assert loop.notice(case_id, deadline_days=10**6).status_code == 422
    assert loop.notice(case_id, issued_on="0001-01-01").status_code == 422
    assert loop.notice(case_id, deadline_days=3650).status_code == 201
    cycle = {"last_on": "0001-01-01", "next_due_on": "0002-01-01"}
    r = client.put("/api/v1/registry/vehicles", json={"vehicles": [vehicle(plate="苏B77777", inspection_cycle=cycle)]},
                   headers=login("transport"))
    assert r.status_code == 422


def test_filters(loop, client, login):
    mine = _violations_at(loop, 2)
    loop.supervisory_test("苏B99999", color="blue", kind="depot_check")

    def ids(query: str) -> list[int]:
        r = client.get(f"{VIOLATIONS}?{query}", headers=loop.police)
        assert r.status_code == 200, r.get_json()
        return [v["id"] for v in r.get_json()["items"]]

    assert ids(f"plate={PLATE}&plate_color=yellow") == mine[::-1]
    assert ids("plate=苏b 12345") == mine[::-1]  # cleaned like any plate
    assert len(ids("plate_color=blue")) == 1
    assert len(ids("source=depot_check")) == 1 and len(ids("source=road_check")) == 2
    today = datetime.now(CST).date()
    assert len(ids(f"from={today}&to={today}")) + len(ids(f"to={today - timedelta(days=1)}")) == 3
    assert ids(f"from={today + timedelta(days=1)}") == []
    assert len(ids("region=320200")) == 3 and ids("region=320500") == []
    assert client.get(f"{VIOLATIONS}?source=fax", headers=loop.police).status_code == 422
    assert client.get(f"{VIOLATIONS}?from={today}&to={today - timedelta(days=1)}",
                      headers=loop.police).status_code == 422


# --- a vehicle's standing -----------------------------------------------------------------------


def test_vehicle_status_shows_open_case_and_cycle_violations(app, loop, client, login):
    register(client, login, vehicle(inspection_cycle={"last_on": "2026-03-10", "next_due_on": "2027-03-10"}))
    case_id = loop.open_case(tested_at="2026-03-09T10:00:00+08:00")  # before this cycle
    _violations_at(loop, 2)
    got = client.get(f"/api/v1/vehicles/{PLATE}?plate_color=yellow", headers=loop.police).get_json()
    assert got["open_case"]["id"] == case_id and got["open_case"]["status"] == "open"
    assert len(got["open_case"]["violations"]) == 3 and got["open_case"]["overdue"] is False
    # Strikes in the cycle: one a local day, however many violations it has.
    days = {v["detected_on"] for v in got["open_case"]["violations"] if v["detected_on"] >= "2026-03-10"}
    assert got["cycle_violations"] == len(days)


def test_cycle_violations_without_a_cycle_count_the_last_365_days(app, loop, client):
    loop.open_case(tested_at=(datetime.now(CST) - timedelta(days=366)).isoformat())
    _violations_at(loop, 1)
    got = client.get(f"/api/v1/vehicles/{PLATE}?plate_color=yellow", headers=loop.police).get_json()
    assert got["cycle_violations"] == 1 and got["vehicle"]["registered"] is False
