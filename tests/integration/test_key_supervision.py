"""Key supervision: overdue cases and heavy diesel without remote OBD (derived), three strikes (stored)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from enforcement.models import Case
from tests.factories import CST, vehicle
from tests.integration.test_blacklist import d, plate, put_vehicles, violate

URL = "/api/v1/key-supervision"


@pytest.fixture()
def transport(login):
    return login("transport")


def make_overdue(app, plate_: str) -> date:
    today = datetime.now(CST).date()
    violate(app, plate_, today - timedelta(days=20))
    with app.extensions["lantian"].sessions() as s:
        case = s.scalars(select(Case)).one()
        case.status, case.deadline_on = "notified", today - timedelta(days=1)
        s.commit()
    return today


def test_reasons_and_since(app, client, transport, login):
    put_vehicles(client, transport,
                 vehicle(plate(1), remote_obd=False),                      # no OBD
                 vehicle(plate(2), remote_obd=None, category="N2"),        # unknown counts as without
                 vehicle(plate(3), remote_obd=True),                       # fine
                 vehicle(plate(4), remote_obd=False, category="N1"),       # not heavy
                 vehicle(plate(5), remote_obd=False, fuel_type="gasoline"),
                 vehicle(plate(6), use_nature="non_operating"))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(6), d(day))
    body = client.get(URL, headers=login("police")).get_json()
    got = {i["vehicle"]["plate"]: i["reasons"] for i in body["items"]}
    assert got == {plate(1): ["no_remote_obd"], plate(2): ["no_remote_obd"], plate(6): ["three_strikes"]}
    assert body["next_cursor"] is None and all(i["since"] for i in body["items"])
    only = client.get(URL + "?reason=three_strikes", headers=login("env_officer")).get_json()["items"]
    assert [i["vehicle"] for i in only] == [{"plate": plate(6), "plate_color": "yellow"}]


def test_overdue_case_while_it_lasts(app, client, transport, login):
    put_vehicles(client, transport, vehicle(plate(7)))
    today = make_overdue(app, plate(7))
    police = login("police")
    (item,) = client.get(URL, headers=police).get_json()["items"]
    assert item["reasons"] == ["overdue_case"]
    assert datetime.fromisoformat(item["since"]).astimezone(CST) == datetime.combine(today, datetime.min.time(), CST)
    with app.extensions["lantian"].sessions() as s:
        s.scalars(select(Case)).one().status = "closed"
        s.commit()
    assert client.get(URL, headers=police).get_json()["items"] == []


def test_registry_change_is_followed_at_once(app, client, transport, login):
    put_vehicles(client, transport, vehicle(plate(1), remote_obd=False))
    police = login("police")
    assert len(client.get(URL, headers=police).get_json()["items"]) == 1
    put_vehicles(client, transport, vehicle(plate(1), remote_obd=True))
    assert client.get(URL, headers=police).get_json()["items"] == []
    body = client.get(f"/api/v1/vehicles/{plate(1)}?plate_color=yellow", headers=police).get_json()
    assert body["key_supervision"] == [] and body["blacklisted"] is False


def test_region_filter_and_cursor(app, client, transport, login):
    put_vehicles(client, transport, *[vehicle(plate(i), remote_obd=False, region="320200") for i in range(3)],
                 vehicle(plate(9), remote_obd=False, region="320500"))
    scoped = login("police", region="320200")
    first = client.get(URL + "?limit=2", headers=scoped).get_json()
    second = client.get(URL + f"?limit=2&cursor={first['next_cursor']}", headers=scoped).get_json()
    plates = [i["vehicle"]["plate"] for i in first["items"] + second["items"]]
    assert sorted(plates) == [plate(0), plate(1), plate(2)] and second["next_cursor"] is None
    everyone = login("env_officer")
    assert [i["vehicle"]["plate"] for i in client.get(URL + "?region=320500", headers=everyone).get_json()["items"]] \
        == [plate(9)]
    assert client.get(URL + "?reason=bogus", headers=everyone).status_code == 422
