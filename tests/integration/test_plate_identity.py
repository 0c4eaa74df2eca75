"""Which vehicle a read belongs to (DOMAIN.md section 7, "Plates"), and when a station's
measurements count ("Stations over time")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.identity import Station, StationSuspension
from core.registry import Vehicle
from enforcement.models import Violation
from remote_sensing.models import Event
from tests.conftest import cli_json
from tests.factories import CST, event, vehicle

EVENTS = "/api/v1/remote-sensing/events"


def send(station, drain, body: dict) -> int:
    r = station.post_json(EVENTS, body)
    assert r.status_code == 202, r.get_json()
    drain()
    return r.get_json()["id"]


def filed(app, pk: int) -> tuple[str | None, str | None, list[str]]:
    """(plate of the vehicle the event is filed under, match, reasons)."""
    with app.extensions["lantian"].sessions() as s:
        e = s.get(Event, pk)
        plate = s.get(Vehicle, e.vehicle_id).plate if e.vehicle_id else None
        return plate, e.plate_match, e.reasons


def vehicles(app) -> set[tuple[str, bool]]:
    with app.extensions["lantian"].sessions() as s:
        return {(v.plate, v.registered) for v in s.scalars(select(Vehicle))}


# --- plates ------------------------------------------------------------------------------


def test_one_fuzzy_candidate_is_that_vehicle(app, station, drain, registry):
    registry(vehicle("苏B12340"))
    assert filed(app, send(station, drain, event(plate="苏B1234O"))) == ("苏B12340", "fuzzy", [])


def test_two_fuzzy_candidates_belong_to_no_vehicle(app, station, drain, registry):
    registry(vehicle("苏B12380"), vehicle("苏B123B0"))
    before = vehicles(app)
    # The read's OCR repair (苏B12380) is itself one of the registered plates: still nobody's.
    pk = send(station, drain, event("a", plate="苏B1238O"))
    assert filed(app, pk) == (None, "none", [])
    assert vehicles(app) == before  # no provisional twin either
    view = station.get(f"{EVENTS}/{pk}").get_json()
    assert view["validity"]["valid"] is True and view["verdict"] == "pass"


def test_ambiguous_exceedances_enforce_nothing(app, station, drain, registry):
    registry(vehicle("苏B12380"), vehicle("苏B123B0"))
    now = datetime.now(CST)
    for n in range(3):
        pk = send(station, drain, event(f"x{n}", plate="苏B123８O", at=now - timedelta(hours=3 - n),
                                       measurements={"opacity_pct": 80.0}))
        assert station.get(f"{EVENTS}/{pk}").get_json()["verdict"] == "exceed"
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 0


def test_exact_beats_a_fuzzy_twin(app, station, drain, registry):
    registry(vehicle("苏B12380"), vehicle("苏B123B0"))
    assert filed(app, send(station, drain, event(plate="苏B12380"))) == ("苏B12380", "exact", [])


def test_o_in_second_place_is_never_repaired(app, station, drain, registry):
    registry(vehicle("粤O12345"))
    assert filed(app, send(station, drain, event("a", plate="粤O12345"))) == ("粤O12345", "exact", [])
    assert filed(app, send(station, drain, event("b", plate="粤012345"))) == (None, "none", ["plate_unreadable"])


def test_an_unknown_read_is_its_own_provisional_vehicle(app, station, drain):
    assert filed(app, send(station, drain, event("a", plate="苏B1234O"))) == ("苏B12340", "none", [])
    # The same plate read again joins that provisional identity.
    assert filed(app, send(station, drain, event("b", plate="苏B12340"))) == ("苏B12340", "none", [])
    assert vehicles(app) == {("苏B12340", False)}


def test_a_registered_twin_takes_the_read_from_a_provisional_one(app, station, drain, registry):
    send(station, drain, event("a", plate="苏B12340"))  # provisional 苏B12340
    registry(vehicle("苏B1234D"))
    assert filed(app, send(station, drain, event("b", plate="苏B12340"))) == ("苏B1234D", "fuzzy", [])
    registry(vehicle("苏B1234Q"))
    # Two registered twins: neither of them, nor the provisional identity.
    assert filed(app, send(station, drain, event("c", plate="苏B12340"))) == (None, "none", [])


@pytest.mark.parametrize(
    ("plate", "color", "readable"),
    [("苏AD12345", "green", True), ("苏AD12345", "yellow_green", True), ("苏AD12345", "blue", False),
     ("苏B12345", "green", False), ("苏A1234警", "white", True), ("苏A1234警", "blue", False),
     ("使123456", "black", True), ("使123456", "white", False)],
)
def test_plate_form_and_colour_are_cross_checked(app, station, drain, plate, color, readable):
    _, _, reasons = filed(app, send(station, drain, event(plate=plate, color=color)))
    assert reasons == ([] if readable else ["plate_unreadable"])
    assert bool(vehicles(app)) is readable


# --- stations over time ------------------------------------------------------------------


def test_station_create_takes_window_and_place(runner):
    got = cli_json(runner, "stations", "create", "--code", "W1", "--kind", "remote_sensing", "--region", "320200",
                   "--calibrated-from", "2025-01-02", "--location", "G2 K1203", "--lat", "31.5", "--lon", "120.3")
    assert (got["calibrated_from"], got["location"], got["lat"], got["lon"]) == ("2025-01-02", "G2 K1203", 31.5, 120.3)
    default = cli_json(runner, "stations", "create", "--code", "W2", "--kind", "remote_sensing", "--region", "320200")
    assert default["calibrated_from"] == (date.today() - timedelta(days=730)).isoformat()


@pytest.mark.parametrize(("flag", "value"), [("--lat", "90.01"), ("--lat", "-90.5"), ("--lon", "180.1"),
                                              ("--lon", "-181"), ("--calibrated-from", "2099-01-01")])
def test_station_create_refuses_bad_values(app, runner, flag, value):
    from lantian.cli import cli

    result = runner.invoke(cli, ["stations", "create", "--code", "W3", "--kind", "remote_sensing",
                                 "--region", "320200", flag, value])
    assert result.exit_code != 0
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Station)) == 0


@pytest.mark.parametrize(("lat", "lon"), [("90", "180"), ("-90", "-180")])
def test_station_place_limits_are_inclusive(runner, lat, lon):
    got = cli_json(runner, "stations", "create", "--code", "W4", "--kind", "remote_sensing", "--region", "320200",
                   "--lat", lat, "--lon", lon)
    assert (got["lat"], got["lon"]) == (float(lat), float(lon))


def test_measurements_outside_the_calibration_window_are_invalid(app, make_station, drain):
    today = datetime.now(CST).date()
    station = make_station("RS9", calibrated_from=today.isoformat())
    start = datetime.combine(today, datetime.min.time(), CST)
    assert filed(app, send(station, drain, event("in", at=start)))[2] == []  # the first day counts
    late = start - timedelta(seconds=1)  # the day before, uploaded late
    assert filed(app, send(station, drain, event("before", at=late)))[2] == ["station_uncalibrated"]


def test_suspension_is_an_interval_and_refuses_uploads_while_open(app, station, drain, runner):
    rt = app.extensions["lantian"]
    assert cli_json(runner, "stations", "suspend", "--code", "RS001") == {"code": "RS001", "suspended": True}
    cli_json(runner, "stations", "suspend", "--code", "RS001")  # again: still one interval
    refused = station.post_json(EVENTS, event("during"))
    assert refused.status_code == 403
    cli_json(runner, "stations", "resume", "--code", "RS001")
    with rt.sessions() as s:
        (interval,) = s.scalars(select(StationSuspension)).all()
        assert interval.until_at is not None and interval.from_at <= interval.until_at
        # An earlier suspension, recorded as an interval: what was measured then is buffered
        # and uploaded after the resume.
        start = datetime.now(UTC) - timedelta(hours=2)
        s.add(StationSuspension(station_id=interval.station_id, from_at=start, until_at=start + timedelta(hours=1)))
        s.commit()
    assert filed(app, send(station, drain, event("at-start", at=start)))[2] == ["station_suspended"]
    inside = start + timedelta(minutes=59, seconds=59)
    assert filed(app, send(station, drain, event("inside", at=inside)))[2] == ["station_suspended"]
    assert filed(app, send(station, drain, event("at-end", at=start + timedelta(hours=1))))[2] == []
    assert filed(app, send(station, drain, event("before", at=start - timedelta(seconds=1))))[2] == []
