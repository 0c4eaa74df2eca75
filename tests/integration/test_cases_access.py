"""Who may call what (every endpoint x every role), region scoping, and concurrent violations."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.registry import Vehicle
from core.settings import Policy
from enforcement import violations
from enforcement.models import Case, Violation
from tests.conftest import needs_postgres
from tests.factories import CST, vehicle
from tests.integration.test_cases import PLATE, Loop

ROLES = ("admin", "env_officer", "police", "transport", "repair_station", "inspection_station")
READERS = {"admin", "police", "env_officer", "transport"}

# (method, path, body, roles allowed)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/api/v1/supervisory-tests", {}, {"admin", "env_officer", "police"}),
    ("GET", "/api/v1/violations", None, READERS),
    ("GET", "/api/v1/violations/{violation}", None, READERS),
    ("GET", "/api/v1/cases", None, READERS),
    ("GET", "/api/v1/cases/{case}", None, READERS),
    ("POST", "/api/v1/cases/{case}/notices", {"deadline_days": 0}, {"admin", "env_officer"}),
    ("POST", "/api/v1/cases/{case}/penalties", {}, {"admin", "police"}),
    ("POST", "/api/v1/repairs", {}, {"admin", "repair_station"}),
    ("POST", "/api/v1/retests", {}, {"admin", "inspection_station"}),
]


@pytest.fixture()
def loop(client: Any, login: Any, runner: Any) -> Loop:
    return Loop(client, login, runner)


@pytest.mark.parametrize("method, path, body, allowed", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_every_endpoint_for_every_role(loop, login, client, method, path, body, allowed):
    made = loop.supervisory_test().get_json()
    path = path.format(case=made["case_id"], violation=made["violation_id"])
    assert client.open(path, method=method, json=body).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.open(path, method=method, json=body, headers=bad).status_code == 401
    orgs = {"repair_station": "M001", "inspection_station": "I001"}
    for role in ROLES:
        headers = login(role, None, orgs.get(role), username=f"matrix-{role}")
        status = client.open(path, method=method, json=body, headers=headers).status_code
        if role in allowed:
            # Readers get 200; writers get past the role check to the (deliberately empty) body: 422.
            assert status == (200 if method == "GET" else 422), (role, status)
        else:
            assert status == 403, (role, status)


def test_region_scoping_hides_other_regions(loop, login, client):
    made = loop.supervisory_test().get_json()  # officer of 320200
    case_id = made["case_id"]
    other = login("police", "320500", username="suzhou")
    child = login("police", "320281", username="jiangyin")
    province = login("police", "320000", username="jiangsu")
    assert client.get(f"/api/v1/cases/{case_id}", headers=other).status_code == 404
    assert client.get(f"/api/v1/violations/{made['violation_id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/violations/{made['violation_id']}", headers=loop.police).status_code == 200
    assert client.get("/api/v1/cases", headers=other).get_json()["items"] == []
    assert client.get("/api/v1/violations", headers=other).get_json()["items"] == []
    assert client.get("/api/v1/violations?region=320200", headers=other).get_json()["items"] == []
    assert client.get("/api/v1/cases", headers=child).get_json()["items"] == []  # the child sees not its parent
    assert len(client.get("/api/v1/cases", headers=province).get_json()["items"]) == 1
    r = client.post(f"/api/v1/cases/{case_id}/penalties", json={"decision_no": "D-9"}, headers=other)
    assert r.status_code == 404
    assert len(client.get("/api/v1/cases?region=320200", headers=loop.police).get_json()["items"]) == 1
    assert client.get("/api/v1/cases?region=320281", headers=loop.police).get_json()["items"] == []


def test_case_list_filters_by_status(loop, client):
    first = loop.open_case()
    second = loop.open_case("苏B54321")
    loop.notice(second)

    def ids(query: str) -> list[int]:
        return [c["id"] for c in client.get(f"/api/v1/cases?{query}", headers=loop.police).get_json()["items"]]

    assert ids("") == [second, first]
    assert ids("status=notified") == [second] and ids("status=open") == [first]
    assert client.get("/api/v1/cases?status=lost", headers=loop.police).status_code == 422


@needs_postgres("row locks need PostgreSQL")
def test_concurrent_violations_leave_exactly_one_open_case(app, client, login):
    register = client.put("/api/v1/registry/vehicles", json={"vehicles": [vehicle()]}, headers=login("transport"))
    assert register.status_code == 200
    rt = app.extensions["lantian"]
    policy, tz = Policy(), rt.tz
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def record(n: int) -> None:
        try:
            with rt.sessions() as session, session.begin():
                car = session.scalars(select(Vehicle).where(Vehicle.plate == PLATE)).one()
                barrier.wait(timeout=10)
                violations.record_violation(
                    session, vehicle=car, source="road_check", source_ref=f"t-{n}",
                    detected_at=datetime.now(CST) - timedelta(minutes=n), details={}, policy=policy, tz=tz,
                    actor="test",
                )
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    with rt.sessions() as s:
        cases = s.scalars(select(Case)).all()
        assert [c.status for c in cases] == ["open"]
        assert {v.case_id for v in s.scalars(select(Violation))} == {cases[0].id}
        assert len(s.scalars(select(Violation)).all()) == workers


def test_m_and_i_stations_read_the_case_of_the_vehicle_they_serve(client, login, runner):
    from tests.conftest import cli_json
    from tests.integration.test_cases import Loop

    loop = Loop(client, login, runner)
    case_id = loop.open_case()
    loop.notice(case_id)
    loop.penalty(case_id)
    loop.repair()
    for headers in (loop.repairer, loop.inspector):
        r = client.get("/api/v1/cases/lookup?plate=苏B12345&plate_color=yellow", headers=headers)
        assert r.status_code == 200, r.get_json()
        view = r.get_json()
        assert view["id"] == case_id and view["status"] == "repaired"
        assert view["violations"][0]["evidence"]["test"]["results"] == {"opacity_m1": 2.1}
        assert "penalties" not in view and "notices" not in view
        assert "reported_by" not in view["repairs"][0] and "recorded_by" not in str(view)
        assert "user:" not in str(view)  # no officer or staff names
    cli_json(runner, "orgs", "create", "--code", "M009", "--kind", "repair_station", "--name", "far", "--region",
             "330100")
    far = login("repair_station", org="M009", username="far-away")
    r = client.get("/api/v1/cases/lookup?plate=苏B12345&plate_color=yellow", headers=far)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "no_open_case"
    lookup = "/api/v1/cases/lookup?plate={}&plate_color={}"
    assert client.get(lookup.format("苏B99999", "yellow"), headers=loop.repairer).status_code == 404
    assert client.get(lookup.format("苏B12345", "purple"), headers=loop.repairer).status_code == 422
    assert client.get("/api/v1/cases/lookup?plate=苏B12345&plate_color=yellow", headers=loop.police).status_code == 403
    loop.retest()
    r = client.get("/api/v1/cases/lookup?plate=苏B12345&plate_color=yellow", headers=loop.inspector)
    assert r.status_code == 404  # closed: nothing left to serve
