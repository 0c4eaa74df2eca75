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
