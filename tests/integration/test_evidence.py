"""The evidence behind a violation and what an event shows of its measurement (API.md section 9)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.factories import CST, event
from tests.integration.test_cases import PLATE, Loop

EVENTS = "/api/v1/remote-sensing/events"


def test_a_station_has_a_location(runner):
    from tests.conftest import cli_json

    made = cli_json(runner, "stations", "create", "--code", "RS009", "--kind", "remote_sensing", "--region",
                    "320200", "--location", "G312 K1203 东向", "--lat", "31.49", "--lon", "120.31")
    assert (made["location"], made["lat"], made["lon"]) == ("G312 K1203 东向", 31.49, 120.31)
    from lantian.cli import cli

    for bad in (["--lat", "91", "--lon", "0"], ["--lat", "0", "--lon", "181"]):
        result = runner.invoke(cli, ["stations", "create", "--code", "RS010", "--kind", "remote_sensing",
                                     "--region", "320200", *bad])
        assert result.exit_code != 0, bad


def _two_exceedances(make_station: Any, drain: Any) -> tuple[Any, list[int]]:
    station = make_station("RS001", location="G312 K1203", lat="31.49", lon="120.31")
    now = datetime.now(CST)
    ids = []
    for n, (at, no) in enumerate(((now - timedelta(hours=3), 1850), (now - timedelta(hours=1), 1700))):
        body = event(f"RS001-{n}", at=at, measurements={"no_ppm": no})
        if n:
            body.pop("vsp_kw_t")
        r = station.post_json(EVENTS, body)
        assert r.status_code == 202, r.get_json()
        ids.append(r.get_json()["id"])
    drain()
    return station, ids


def test_an_event_shows_what_was_measured_and_where(make_station, drain):
    station, (first, second) = _two_exceedances(make_station, drain)
    view = station.get(f"{EVENTS}/{first}").get_json()
    assert (view["lane"], view["speed_kmh"], view["acceleration_ms2"], view["vsp_kw_t"]) == (1, 42.5, 0.3, 8.2)
    assert view["vsp_computed"] is False and view["measurements"]["no_ppm"] == 1850
    assert view["conditions"]["wind_speed_ms"] == 2.1
    assert (view["location"], view["lat"], view["lon"]) == ("G312 K1203", 31.49, 120.31)
    computed = station.get(f"{EVENTS}/{second}").get_json()
    assert computed["vsp_computed"] is True
    assert abs(computed["vsp_kw_t"] - (0.05921 * 42.5 + 0.305924 * 42.5 * 0.3 + 6.52981e-6 * 42.5**3)) < 1e-9


def test_a_remote_sensing_violation_carries_its_measurements(client, login, make_station, drain):
    _, (first, second) = _two_exceedances(make_station, drain)
    police = login("police")
    (violation,) = client.get("/api/v1/violations", headers=police).get_json()["items"]
    assert violation["source"] == "remote_sensing"
    events = violation["evidence"]["events"]
    assert [e["id"] for e in events][-1] == second  # the judged run ends with the event that completed it
    last = events[-1]
    assert last["measurements"]["no_ppm"] == 1700 and last["limits"]["no_ppm"] == 1500
    assert last["station"] == {"code": "RS001", "name": None, "location": "G312 K1203", "lat": 31.49,
                               "lon": 120.31}
    assert (last["lane"], last["speed_kmh"]) == (1, 42.5) and last["match"] in ("exact", "fuzzy", "none")
    assert last["plate"]["number"] == PLATE and last["conditions"]["humidity_pct"] == 65
    single = client.get(f"/api/v1/violations/{violation['id']}", headers=police).get_json()
    assert single["evidence"] == violation["evidence"]
    (case,) = client.get("/api/v1/cases", headers=police).get_json()["items"]
    assert case["violations"][0]["evidence"] == violation["evidence"]


def test_a_supervisory_test_violation_carries_the_test(client, login, runner):
    loop = Loop(client, login, runner)
    case_id = loop.open_case(results={"opacity_m1": 2.1})
    (violation,) = loop.case(case_id)["violations"]
    test = violation["evidence"]["test"]
    assert (test["kind"], test["method"], test["results"], test["passed"], test["location"]) == (
        "road_check", "free_acceleration", {"opacity_m1": 2.1}, False, "G2 K1203")
    assert "recorded_by" not in test  # evidence names no person


def test_a_black_smoke_violation_carries_the_snapshot_and_its_review(app, client, login, make_station, drain):
    from tests.integration.test_black_smoke import UPLOAD, jpeg, metadata, upload

    smoke = make_station("BS001", kind="black_smoke")
    r = upload(smoke, metadata("bs-1", plate=PLATE), [jpeg(), jpeg(seed=2)])
    assert r.status_code == 202, r.get_json()
    pk = r.get_json()["id"]
    drain()
    officer = login("env_officer", "320200", username="wang")
    r = client.post(f"{UPLOAD}/{pk}/review", headers=officer,
                    json={"decision": "confirm", "ringelmann": 4, "note": "dense plume"})
    assert r.status_code == 200, r.get_json()
    police = login("police")
    (violation,) = client.get("/api/v1/violations", headers=police).get_json()["items"]
    assert violation["source"] == "black_smoke" and violation["id"] == r.get_json()["violation_id"]
    evidence = violation["evidence"]
    snap, review = evidence["snapshot"], evidence["review"]
    assert (snap["id"], snap["lane"], snap["camera_ringelmann"], snap["plate"]["number"]) == (pk, 2, 3, PLATE)
    assert snap["station"]["code"] == "BS001" and snap["estimated_ringelmann"] is not None
    assert snap["images"] == [f"{UPLOAD}/{pk}/images/0", f"{UPLOAD}/{pk}/images/1"]
    assert (review["ringelmann"], review["note"]) == (4, "dense plume") and review["reviewed_at"]
    assert "by" not in review and "events" not in evidence and "test" not in evidence  # evidence names no person
    for n in range(2):  # what the evidence points at can be fetched
        assert client.get(snap["images"][n], headers=police).status_code == 200
    single = client.get(f"/api/v1/violations/{violation['id']}", headers=police).get_json()
    assert single["evidence"] == evidence
    (case,) = client.get("/api/v1/cases", headers=police).get_json()["items"]
    assert case["violations"][0]["evidence"] == evidence
    assert client.get(f"/api/v1/cases/{case['id']}", headers=police).get_json()["violations"][0]["evidence"] == evidence


def test_a_supervisory_test_violation_shows_the_test_in_every_listing(client, login, runner):
    loop = Loop(client, login, runner)
    case_id = loop.open_case(results={"opacity_m1": 2.1})
    (in_case,) = loop.case(case_id)["violations"]
    police = login("police", username="police-evidence")
    (listed,) = client.get("/api/v1/violations", headers=police).get_json()["items"]
    single = client.get(f"/api/v1/violations/{listed['id']}", headers=police).get_json()
    assert listed["evidence"] == single["evidence"] == in_case["evidence"]
    assert set(listed["evidence"]) == {"test"} and listed["evidence"]["test"]["passed"] is False
