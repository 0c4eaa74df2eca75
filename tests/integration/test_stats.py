"""Monthly supervision statistics."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import cli_json
from tests.factories import CST, event, vehicle

EVENTS = "/api/v1/remote-sensing/events"
STATS = "/api/v1/stats/supervision"


def test_monthly_figures(client, login, station, drain, runner):
    admin = login("admin")
    client.put("/api/v1/registry/vehicles", json={"vehicles": [
        vehicle("苏B00001"), vehicle("苏B00002"), vehicle("苏B00003", fuel_type="gasoline", color="blue"),
    ]}, headers=admin)
    at = datetime.now(CST) - timedelta(minutes=30)
    month = at.strftime("%Y-%m")
    station.post_json(EVENTS, event("s1", at=at, plate="苏B00001", measurements={"no_ppm": 1600}))
    station.post_json(EVENTS, event("s2", at=at, plate="苏B00001"))
    station.post_json(EVENTS, event("s3", at=at, plate="苏B00003", color="blue"))
    station.post_json(EVENTS, event("s4", at=at, speed_kmh=200))
    drain()
    police = login("police", "320200")
    client.post("/api/v1/supervisory-tests", headers=police, json={
        "plate": "苏B00002", "plate_color": "yellow", "tested_at": at.isoformat(), "kind": "depot_check",
        "method": "free_acceleration", "results": {}, "passed": True})

    body = client.get(f"{STATS}?month={month}", headers=police).get_json()
    assert body["month"] == month
    assert body["tests_by_source"] == {"remote_sensing": 3, "black_smoke": 0, "road_check": 0, "depot_check": 1}
    assert body["remote_sensing"] == {"events": 4, "valid": 3, "judged": 3, "exceeded": 1, "exceedance_rate": 0.3333}
    assert body["diesel"] == {"vehicles_tested": 2, "registered": 2, "coverage": 1.0}

    other = client.get(f"{STATS}?month={month}", headers=login("police", "320500")).get_json()
    assert other["remote_sensing"]["events"] == 0 and other["diesel"]["coverage"] is None
    assert client.get(f"{STATS}?month=2026-13", headers=police).status_code == 422
    cli_json(runner, "orgs", "create", "--code", "M1", "--kind", "repair_station", "--name", "M", "--region", "320200")
    assert client.get(STATS, headers=login("repair_station", org="M1")).status_code == 403


BATCH = "/api/v1/remote-sensing/events/batch"


def last_november() -> datetime:
    """A day of the current or last heating season, in the past (local time)."""
    now = datetime.now(CST)
    year = now.year if now >= datetime(now.year, 11, 16, tzinfo=CST) else now.year - 1
    return datetime(year, 11, 15, 10, 0, tzinfo=CST)


def post_batch(station, events):
    r = station.post_json(BATCH, {"events": events})
    assert r.status_code == 200 and {x["status"] for x in r.get_json()["results"]} == {"received"}, r.get_json()


def test_the_monthly_quota_counts_distinct_vehicles_with_valid_measurements(client, login, station, drain):
    at = last_november()
    month = at.strftime("%Y-%m")
    plates = [f"苏B{n:05d}" for n in range(1, 61)]
    events = [event(f"q{n}", at=at + timedelta(minutes=n), plate=p) for n, p in enumerate(plates[:59])]
    events.append(event("q-again", at=at + timedelta(hours=3), plate=plates[0]))  # tested twice: counts once
    events.append(event("q-invalid", at=at + timedelta(hours=3), plate=plates[59], speed_kmh=200))
    post_batch(station, events)
    drain()
    env = login("env_officer", "320200")
    body = client.get(f"{STATS}?month={month}", headers=env).get_json()
    assert body["tests_by_source"]["remote_sensing"] == 60  # tests, not vehicles
    assert body["quota"] == {"vehicles_tested": 59, "target": 60, "met": False}
    assert body["regions"][0]["region"] == "320200"
    assert body["regions"][0]["quota"] == {"vehicles_tested": 59, "target": 60, "met": False}

    post_batch(station, [event("q-valid", at=at + timedelta(hours=4), plate=plates[59])])
    drain()
    body = client.get(f"{STATS}?month={month}", headers=env).get_json()
    assert body["quota"] == {"vehicles_tested": 60, "target": 60, "met": True}  # exactly 60 meets it
    next_month = (at.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    assert client.get(f"{STATS}?month={next_month}", headers=env).get_json()["quota"]["vehicles_tested"] == 0


def test_winter_diesel_coverage_counts_the_heating_season(client, login, station, drain):
    admin = login("admin")
    diesel = [f"苏B1{n:04d}" for n in range(10)]
    r = client.put("/api/v1/registry/vehicles", headers=admin, json={"vehicles": [
        *(vehicle(p) for p in diesel), vehicle("苏B20000", fuel_type="gasoline", color="blue"),
        vehicle("苏E10000", region="320500")]})
    assert r.status_code == 200
    at = last_november()
    season_start = datetime(at.year, 10, 1, tzinfo=CST)
    post_batch(station, [
        *(event(f"w{n}", at=at + timedelta(minutes=n), plate=p) for n, p in enumerate(diesel[:6])),
        event("w-again", at=at + timedelta(days=1), plate=diesel[0]),
        event("w-before", at=season_start - timedelta(seconds=1), plate=diesel[6]),  # Sep 30, 23:59:59
        event("w-invalid", at=at, plate=diesel[7], measurements={"co2_pct": 0}),
        event("w-gasoline", at=at, plate="苏B20000", color="blue"),
    ])
    drain()
    police = login("police", "320200")
    client.post("/api/v1/supervisory-tests", headers=police, json={
        "plate": diesel[8], "plate_color": "yellow", "tested_at": season_start.isoformat(), "kind": "road_check",
        "method": "free_acceleration", "results": {}, "passed": True})  # Oct 1, 00:00:00: in the season
    month = at.strftime("%Y-%m")
    body = client.get(f"{STATS}?month={month}", headers=police).get_json()
    assert body["winter"] == {"first": f"{at.year}-10-01", "last": f"{at.year + 1}-03-31", "vehicles_tested": 7,
                              "registered": 10, "coverage": 0.7, "target": 0.8, "met": False}
    assert body["diesel"] == {"vehicles_tested": 6, "registered": 10, "coverage": 0.6}  # November alone

    client.post("/api/v1/supervisory-tests", headers=police, json={
        "plate": diesel[9], "plate_color": "yellow", "tested_at": (at + timedelta(days=2)).isoformat(),
        "kind": "depot_check", "method": "free_acceleration", "results": {}, "passed": False})
    body = client.get(f"{STATS}?month={month}", headers=police).get_json()
    assert body["winter"]["vehicles_tested"] == 8 and body["winter"]["met"] is True  # exactly 80%
    assert [r["region"] for r in body["regions"]] == ["320200"]
    assert body["regions"][0]["winter"] == {"vehicles_tested": 8, "registered": 10, "coverage": 0.8,
                                            "target": 0.8, "met": True}
    everywhere = client.get(f"{STATS}?month={month}", headers=login("transport")).get_json()
    assert {r["region"]: r["winter"]["registered"] for r in everywhere["regions"]} == {"320200": 10, "320500": 1}


def test_stations_by_valid_share_with_their_reasons(client, login, make_station, drain):
    good, bad = make_station("RS001"), make_station("RS002")
    make_station("RS003")  # silent all month
    make_station("RS900", region="330100")  # outside the officer's region
    at = last_november()
    post_batch(good, [event(f"g{n}", at=at + timedelta(minutes=n), plate=f"苏B3{n:04d}") for n in range(4)])
    post_batch(bad, [
        event("b1", at=at, plate="苏B40001"),
        event("b2", at=at, plate="苏B40002", speed_kmh=200),
        event("b3", at=at, plate="苏B40003", conditions={"wind_speed_ms": 9}),
        event("b4", at=at, plate="苏B40004", conditions={"wind_speed_ms": 9}, speed_kmh=1),
        event("b5", at=at, plate="苏B40005", conditions={"wind_speed_ms": 9}),
    ])
    drain()
    body = client.get(f"/api/v1/stats/stations?month={at:%Y-%m}", headers=login("env_officer", "320200")).get_json()
    assert [s["code"] for s in body["items"]] == ["RS002", "RS001", "RS003"]  # lowest share first, silent last
    bad_row, good_row, silent = body["items"]
    assert (bad_row["events"], bad_row["valid"], bad_row["invalid"], bad_row["valid_share"]) == (5, 1, 4, 0.2)
    assert bad_row["top_reasons"] == [{"reason": "wind_too_strong", "count": 3},
                                      {"reason": "speed_out_of_range", "count": 2}]
    assert (good_row["valid_share"], good_row["top_reasons"]) == (1.0, [])
    assert (silent["events"], silent["valid_share"]) == (0, None)
    supervision = client.get(f"{STATS}?month={at:%Y-%m}", headers=login("police", "320200")).get_json()
    assert supervision["stations"] == body["items"]


def test_exceedance_by_fuel_and_pollutant(client, login, station, drain):
    at = last_november()
    post_batch(station, [
        event("e1", at=at, plate="苏B50001", measurements={"no_ppm": 1600, "opacity_pct": 40}),
        event("e2", at=at, plate="苏B50002", measurements={"no_ppm": 1600}),
        event("e3", at=at, plate="苏B50003"),
        event("e4", at=at, plate="苏B50004"),
        event("e5", at=at, plate="苏A50005", color="blue", fuel_type_observed="gasoline",
              measurements={"co_pct": 3.0}),
        event("e6", at=at, plate="苏B50006", speed_kmh=200, measurements={"no_ppm": 1600}),  # invalid: not judged
    ])
    drain()
    body = client.get(f"/api/v1/stats/exceedance?month={at:%Y-%m}", headers=login("police")).get_json()
    assert body["by_fuel"] == [
        {"fuel_type": "diesel", "judged": 4, "exceeded": 2, "exceedance_rate": 0.5,
         "pollutants": {"no_ppm": {"exceeded": 2, "rate": 0.5}, "opacity_pct": {"exceeded": 1, "rate": 0.25}}},
        {"fuel_type": "gasoline", "judged": 1, "exceeded": 1, "exceedance_rate": 1.0,
         "pollutants": {"co_pct": {"exceeded": 1, "rate": 1.0}}},
    ]


def test_open_and_overdue_cases_and_listings(client, login, drain):
    admin = login("admin")
    client.put("/api/v1/registry/vehicles", headers=admin,
               json={"vehicles": [vehicle("苏B60001"), vehicle("苏B60002")]})
    police, env = login("police", "320200"), login("env_officer", "320200")
    now = datetime.now(CST)
    for plate in ("苏B60001", "苏B60002"):
        for days in (30, 29, 28):  # three strikes on three days
            r = client.post("/api/v1/supervisory-tests", headers=police, json={
                "plate": plate, "plate_color": "yellow", "tested_at": (now - timedelta(days=days)).isoformat(),
                "kind": "road_check", "method": "free_acceleration", "results": {}, "passed": False})
            assert r.status_code == 201, r.get_json()
    cases = client.get("/api/v1/cases", headers=env).get_json()["items"]
    late = cases[0]["id"]
    issued = (now - timedelta(days=20)).date().isoformat()
    r = client.post(f"/api/v1/cases/{late}/notices", headers=env, json={"deadline_days": 15, "issued_on": issued})
    assert r.status_code == 201, r.get_json()
    body = client.get("/api/v1/stats/enforcement", headers=env).get_json()
    assert body["cases"] == {"open": 2, "by_status": {"open": 1, "notified": 1}, "overdue": 1}
    assert body["listings"]["blacklist"] == {"three_strikes": 2}
    far = client.get("/api/v1/stats/enforcement", headers=login("env_officer", "330100")).get_json()
    assert far["cases"] == {"open": 0, "by_status": {}, "overdue": 0} and far["listings"]["blacklist"] == {}
    assert client.get("/api/v1/stats/enforcement?region=32", headers=env).status_code == 422
