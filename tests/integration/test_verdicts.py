"""Verdicts as stations and officers see them: plate matching, validity, fuel and limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from core.registry import Vehicle
from tests.factories import CST, event, vehicle

EVENTS = "/api/v1/remote-sensing/events"


def judged(station, drain, body: dict) -> dict:
    r = station.post_json(EVENTS, body)
    assert r.status_code == 202, r.get_json()
    drain()
    return station.get(f"{EVENTS}/{r.get_json()['id']}").get_json()


def test_exact_match_uses_registry_fuel(station, drain, registry):
    registry(vehicle(fuel_type="gasoline"))
    view = judged(station, drain, event(measurements={"co_pct": 3.0}, fuel_type_observed="diesel"))
    assert view["vehicle"]["match"] == "exact"
    assert view["fuel_type"] == "gasoline"
    assert view["exceeded"] == ["co_pct"]


def test_fuzzy_match_over_ocr_confusion(station, drain, registry):
    registry(vehicle("苏B12340"))
    view = judged(station, drain, event(plate="苏B1234O"))
    assert view["vehicle"] == {"plate": "苏B12340", "plate_color": "yellow", "match": "fuzzy"}


def test_fuzzy_with_two_candidates_is_none(station, drain, registry):
    registry(vehicle("苏B12380"), vehicle("苏B123B0"))
    view = judged(station, drain, event(plate="苏B1238O", confidence=0.95))
    assert view["vehicle"]["match"] == "none"


def test_colour_must_match(station, drain, registry):
    registry(vehicle(color="blue"))
    assert judged(station, drain, event())["vehicle"]["match"] == "none"


def test_unknown_plate_creates_provisional_vehicle(app, station, drain, login, client):
    view = judged(station, drain, event(plate="浙A88888"))
    assert view["vehicle"]["match"] == "none" and view["verdict"] == "pass"
    got = client.get("/api/v1/vehicles/浙A88888?plate_color=yellow", headers=login("police", "320200")).get_json()
    assert got["vehicle"]["registered"] is False


def test_low_confidence_is_unreadable_and_creates_no_vehicle(app, station, drain):
    view = judged(station, drain, event(plate="浙A77777", confidence=0.79))
    assert view["validity"] == {"valid": False, "reasons": ["plate_unreadable"]}
    assert view["verdict"] == "invalid"
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(Vehicle).where(Vehicle.plate == "浙A77777")) is None


def test_confidence_exactly_080_is_readable(station, drain):
    assert judged(station, drain, event(confidence=0.80))["validity"]["valid"] is True


def test_malformed_plate_is_unreadable(station, drain):
    view = judged(station, drain, event(plate="ABC1234"))
    assert view["validity"]["reasons"] == ["plate_unreadable"]


def test_invalid_reasons_in_table_order(station, drain):
    view = judged(station, drain, event(speed_kmh=130, acceleration_ms2=2.5, vsp_kw_t=None,
                                        conditions={"wind_speed_ms": 5.1, "humidity_pct": 86}))
    assert view["validity"]["reasons"] == [
        "speed_out_of_range", "acceleration_out_of_range", "vsp_out_of_range", "wind_too_strong",
        "humidity_too_high",
    ]
    assert view["verdict"] == "invalid" and view["exceeded"] == []


def test_values_at_their_bounds_are_valid(station, drain):
    body = event(speed_kmh=5, acceleration_ms2=-2.0, vsp_kw_t=0,
                 conditions={"wind_speed_ms": 5, "temperature_c": 45, "humidity_pct": 85})
    assert judged(station, drain, body)["validity"] == {"valid": True, "reasons": []}


def test_electric_vehicle_has_no_tailpipe(station, drain, registry):
    registry(vehicle(fuel_type="electric", color="green", plate="苏AD12345"))
    view = judged(station, drain, event(plate="苏AD12345", color="green"))
    assert view["validity"]["reasons"] == ["no_tailpipe"]


def test_unknown_fuel_is_valid_but_no_verdict(station, drain):
    view = judged(station, drain, event(fuel_type_observed=None))
    assert view["validity"] == {"valid": True, "reasons": ["fuel_type_unknown"]}
    assert view["verdict"] == "invalid"


def test_uncalibrated_station(make_station, drain):
    expired = (date.today() - timedelta(days=1)).isoformat()
    station = make_station("RS009", calibrated_until=expired)
    view = judged(station, drain, event())
    assert view["validity"]["reasons"] == ["station_uncalibrated"]


def test_limit_equal_passes_above_exceeds(station, drain):
    at = datetime.now(CST) - timedelta(hours=3)
    equal = judged(station, drain, event("eq", at=at, measurements={"no_ppm": 1500, "opacity_pct": 30}))
    assert equal["verdict"] == "pass"
    above = judged(station, drain, event("ab", at=at + timedelta(hours=1), measurements={"opacity_pct": 30.1}))
    assert above["verdict"] == "exceed" and above["exceeded"] == ["opacity_pct"]


def test_pass_breaks_the_run(station, drain):
    t0 = datetime.now(CST) - timedelta(hours=5)
    high, low = {"no_ppm": 1700}, {"no_ppm": 100}
    judged(station, drain, event("r1", at=t0, measurements=high))
    judged(station, drain, event("r2", at=t0 + timedelta(hours=1), measurements=low))
    third = judged(station, drain, event("r3", at=t0 + timedelta(hours=2), measurements=high))
    assert third["violation_id"] is None and third["warnings"] == ["no_ppm"]
    fourth = judged(station, drain, event("r4", at=t0 + timedelta(hours=3), measurements=high))
    assert fourth["violation_id"] is not None and fourth["judged"] == ["no_ppm"]


def test_invalid_measurement_does_not_break_the_run(station, drain):
    t0 = datetime.now(CST) - timedelta(hours=5)
    high = {"no_ppm": 1700}
    judged(station, drain, event("i1", at=t0, measurements=high))
    judged(station, drain, event("i2", at=t0 + timedelta(hours=1), measurements={"no_ppm": 100}, speed_kmh=150))
    third = judged(station, drain, event("i3", at=t0 + timedelta(hours=2), measurements=high))
    assert third["violation_id"] is not None


def test_officers_read_events_in_their_region_only(station, drain, client, login):
    created = station.post_json(EVENTS, event()).get_json()["id"]
    assert client.get(f"{EVENTS}/{created}", headers=login("env_officer", "320200")).status_code == 200
    assert client.get(f"{EVENTS}/{created}", headers=login("police", "320000")).status_code == 200
    assert client.get(f"{EVENTS}/{created}", headers=login("police", "310000")).status_code == 404
    assert client.get(f"{EVENTS}/{created}", headers=login("transport")).status_code == 403


def test_late_upload_completes_a_run_in_measurement_order(station, drain, make_station):
    late_station = make_station("RS002")
    t0 = datetime.now(CST) - timedelta(hours=6)
    high = {"no_ppm": 1700}
    later = judged(station, drain, event("on-time", at=t0 + timedelta(hours=2), measurements=high))
    assert later["violation_id"] is None  # alone it is only a warning
    earlier = judged(late_station, drain, event("late", at=t0, measurements=high))
    assert earlier["violation_id"] is None and earlier["warnings"] == ["no_ppm"]
    replayed = station.get(f"{EVENTS}/{later['id']}").get_json()
    assert replayed["judged"] == [] and replayed["violation_id"] is None  # the first verdict stays
    assert replayed["revisions"][0]["judged"] == ["no_ppm"] and replayed["revisions"][0]["violation_ids"]
