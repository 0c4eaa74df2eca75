"""The black-smoke review with the officer's reading of the plate, electric vehicles'
smoke as suspected cloned plates, and snapshots of stations that were not fit to measure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.identity import StationSuspension
from core.registry import Vehicle
from enforcement.models import SuspectedClone, Violation
from remote_sensing.models import Snapshot
from tests.conftest import cli_json
from tests.factories import vehicle
from tests.integration.test_black_smoke import UPLOAD, jpeg, metadata, upload

CLONES = "/api/v1/suspected-clones"


@pytest.fixture()
def smoke(make_station: Any) -> Any:
    return make_station("BS001", kind="black_smoke")


@pytest.fixture()
def officer(login) -> dict:
    return login("env_officer", "320200", username="wang")


def snapshot(smoke: Any, drain: Any, event_id: str, **kw: Any) -> int:
    r = upload(smoke, metadata(event_id, **kw), [jpeg()])
    assert r.status_code == 202, r.get_json()
    drain()
    return r.get_json()["id"]


def review(client: Any, pk: int, headers: dict, **body: Any) -> Any:
    return client.post(f"{UPLOAD}/{pk}/review", json={"decision": "confirm", "ringelmann": 3, **body},
                       headers=headers)


def state(app: Any) -> tuple[int, int, int, set[str]]:
    """(violations, pending snapshots, suspected clones, plates known): what a refusal must not change."""
    with app.extensions["lantian"].sessions() as s:
        return (s.scalar(select(func.count()).select_from(Violation)),
                s.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.status == "pending_review")),
                s.scalar(select(func.count()).select_from(SuspectedClone)),
                set(s.scalars(select(Vehicle.plate))))


def violation_plate(app: Any, violation_id: int) -> tuple[str, str, bool]:
    with app.extensions["lantian"].sessions() as s:
        v = s.get(Vehicle, s.get(Violation, violation_id).vehicle_id)
        return v.plate, v.plate_color, v.registered


def error(r: Any, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.get_json()
    return r.get_json()["error"]


# --- the officer's plate -----------------------------------------------------------------


def test_an_unreadable_read_is_confirmed_with_the_plate_the_officer_read(app, client, smoke, drain, officer, registry):
    registry(vehicle("苏B54321"))
    pk = snapshot(smoke, drain, "u", plate="??")
    fields = error(review(client, pk, officer))["fields"]
    assert set(fields) == {"plate", "plate_color"}
    r = review(client, pk, officer, plate="苏B 54321", plate_color="yellow")
    assert r.status_code == 200, r.get_json()
    assert violation_plate(app, r.get_json()["violation_id"]) == ("苏B54321", "yellow", True)


def test_an_ambiguous_read_needs_the_officers_plate(app, client, smoke, drain, officer, registry):
    registry(vehicle("苏B12380"), vehicle("苏B123B0"))
    pk = snapshot(smoke, drain, "amb", plate="苏B1238O")
    before = state(app)
    err = error(review(client, pk, officer))
    assert err["code"] == "plate_ambiguous" and "plate" in err["fields"]
    assert state(app) == before
    r = review(client, pk, officer, plate="苏B123B0", plate_color="yellow")
    assert r.status_code == 200, r.get_json()
    assert violation_plate(app, r.get_json()["violation_id"])[0] == "苏B123B0"


def test_the_officers_plate_overrides_a_readable_read(app, client, smoke, drain, officer, registry):
    registry(vehicle("苏B54321"), vehicle("苏B54321", "blue"))
    pk = snapshot(smoke, drain, "o", plate="苏B12345")
    r = review(client, pk, officer, plate_color="blue", plate="苏B54321")
    assert violation_plate(app, r.get_json()["violation_id"]) == ("苏B54321", "blue", True)


def test_only_the_colour_may_be_corrected(app, client, smoke, drain, officer, registry):
    registry(vehicle("苏B54321", "blue"))
    pk = snapshot(smoke, drain, "c", plate="苏B54321", color="yellow")
    r = review(client, pk, officer, plate_color="blue")
    assert violation_plate(app, r.get_json()["violation_id"]) == ("苏B54321", "blue", True)


def test_an_unknown_well_formed_plate_gets_a_provisional_vehicle(app, client, smoke, drain, officer):
    pk = snapshot(smoke, drain, "p", plate="??")
    r = review(client, pk, officer, plate="浙A66666", plate_color="blue")
    assert violation_plate(app, r.get_json()["violation_id"]) == ("浙A66666", "blue", False)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [({"plate": "ABC123"}, "validation_error", "plate"),  # malformed
     ({"plate": "苏B1234O"}, "validation_error", "plate"),  # O is no serial character: a person writes 0
     ({"plate": "苏B12345", "plate_color": "purple"}, "validation_error", "plate_color"),
     ({"plate": "苏B12345", "plate_color": "green"}, "plate_unreadable", "plate"),  # 7 characters are not green
     ({"plate": "苏B1234D", "plate_color": "yellow"}, "plate_ambiguous", "plate")],  # a twin of 苏B12340
)
def test_a_bad_review_plate_is_422_and_changes_nothing(app, client, smoke, drain, officer, registry, body, code,
                                                       field):
    registry(vehicle("苏B12340"))
    pk = snapshot(smoke, drain, "bad", plate="??")
    before = state(app)
    err = error(review(client, pk, officer, **body))
    assert err["code"] == code and field in err["fields"]
    assert state(app) == before


# --- electric vehicles: suspected cloned plates ------------------------------------------


def test_smoke_on_an_electric_vehicle_is_a_suspected_clone(app, client, smoke, drain, officer, registry, login):
    registry(vehicle("苏B12345", fuel_type="electric"), vehicle("苏B54321"))
    pk = snapshot(smoke, drain, "ev", plate="苏B12345")
    violations, pending, _, plates = state(app)
    err = error(review(client, pk, officer, note="black plume behind an EV"))
    assert err["code"] == "no_tailpipe"
    assert error(review(client, pk, officer))["code"] == "no_tailpipe"  # again: still one listing
    assert state(app) == (violations, pending, 1, plates)

    police = login("police", "320200")
    page = client.get(CLONES, headers=police).get_json()
    assert page["next_cursor"] is None
    (item,) = page["items"]
    assert item["snapshot_id"] == pk and item["vehicle"] == {"plate": "苏B12345", "plate_color": "yellow"}
    assert item["region"] == "320200" and item["ringelmann"] == 3 and item["reported_by"] == "user:wang"
    assert item["note"] == "black plume behind an EV"
    assert client.get(CLONES, headers=login("transport", "320281")).get_json()["items"] == []
    assert client.get(CLONES, headers=police, query_string={"region": "320281"}).get_json()["items"] == []

    # The plate was a misread after all: the officer gives the one on the image.
    r = review(client, pk, officer, plate="苏B54321")
    assert r.status_code == 200 and violation_plate(app, r.get_json()["violation_id"])[0] == "苏B54321"


def test_suspected_clones_are_paginated_newest_first(app, client, smoke, drain, officer, registry, login):
    registry(vehicle("苏B12345", fuel_type="electric"))
    pks = [snapshot(smoke, drain, f"ev{n}", plate="苏B12345") for n in range(3)]
    for pk in pks:
        error(review(client, pk, officer))
    police = login("police")
    first = client.get(CLONES, headers=police, query_string={"limit": 2}).get_json()
    second = client.get(CLONES, headers=police, query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    assert [i["snapshot_id"] for i in first["items"] + second["items"]] == pks[::-1]
    assert second["next_cursor"] is None


def test_suspected_clones_are_for_police_env_and_transport(client, login, runner):
    assert client.get(CLONES).status_code == 401
    for role in ("police", "env_officer", "transport", "admin"):
        assert client.get(CLONES, headers=login(role)).status_code == 200
    cli_json(runner, "orgs", "create", "--code", "M1", "--kind", "repair_station", "--name", "M", "--region", "320200")
    assert client.get(CLONES, headers=login("repair_station", org="M1")).status_code == 403


# --- stations not fit to measure ---------------------------------------------------------


def test_a_snapshot_of_a_suspended_station_cannot_be_confirmed(app, client, smoke, drain, officer):
    pk = snapshot(smoke, drain, "s")
    rt = app.extensions["lantian"]
    with rt.sessions() as s, s.begin():
        snap = s.get(Snapshot, pk)
        s.add(StationSuspension(station_id=snap.station_id, from_at=snap.captured_at - timedelta(minutes=1),
                                until_at=snap.captured_at + timedelta(seconds=1)))
    before = state(app)
    assert error(review(client, pk, officer))["code"] == "station_suspended"
    assert state(app) == before
    assert client.post(f"{UPLOAD}/{pk}/review", json={"decision": "reject"}, headers=officer).status_code == 200


def test_a_snapshot_before_the_calibration_window_cannot_be_confirmed(app, client, make_station, drain, officer):
    late = make_station("BS002", kind="black_smoke", calibrated_from=(date.today() + timedelta(days=2)).isoformat())
    pk = snapshot(late, drain, "early")
    assert error(review(client, pk, officer))["code"] == "station_uncalibrated"


def test_a_snapshot_after_a_suspension_ended_is_confirmed(app, client, smoke, drain, officer):
    pk = snapshot(smoke, drain, "after")
    with app.extensions["lantian"].sessions() as s, s.begin():
        snap = s.get(Snapshot, pk)
        s.add(StationSuspension(station_id=snap.station_id, from_at=datetime.now(UTC) - timedelta(days=1),
                                until_at=snap.captured_at))
    assert review(client, pk, officer).status_code == 200
