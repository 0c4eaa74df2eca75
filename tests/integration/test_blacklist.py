"""Three strikes and fleets at ten percent: listed once, in the violation's transaction."""

from __future__ import annotations

import csv
import io
import threading
from datetime import date, datetime, time, timedelta
from itertools import count
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from core.audit import AuditRecord
from core.registry import Vehicle
from enforcement.models import Listing, Strike
from enforcement.violations import record_violation
from schemas.common import uscc_valid
from tests.conftest import needs_postgres
from tests.factories import CST, vehicle

_refs = count(1)
CYCLE = {"last_on": "2026-03-10", "next_due_on": "2027-03-10"}


def uscc(n: int) -> str:
    """A valid unified social credit code for test fleet n."""
    body = f"91320200MA{n:07d}"
    return next(body + c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if uscc_valid(body + c))


def plate(n: int) -> str:
    return f"苏B{n:05d}"


def put_fleets(client: Any, headers: dict, *numbers: int, region: str = "320200") -> None:
    r = client.put("/api/v1/registry/fleets", headers=headers,
                   json={"fleets": [{"code": uscc(n), "name": f"运输公司{n}", "region": region} for n in numbers]})
    assert r.status_code == 200, r.get_json()


def put_vehicles(client: Any, headers: dict, *bodies: dict) -> dict:
    r = client.put("/api/v1/registry/vehicles", headers=headers, json={"vehicles": list(bodies)})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def violate(app: Flask, plate_: str, day: date, minute: int = 0, color: str = "yellow") -> int:
    rt = app.extensions["lantian"]
    with rt.sessions() as s:
        v = s.scalars(select(Vehicle).where(Vehicle.plate == plate_, Vehicle.plate_color == color)).one()
        made = record_violation(
            s, vehicle=v, source="road_check", source_ref=f"t{next(_refs)}",
            detected_at=datetime.combine(day, time(9, minute), CST), details={}, policy=rt.settings.policy,
            tz=rt.tz, actor="test")
        s.commit()
        return made.id


def entries(app: Flask, **where: Any) -> list[Listing]:
    with app.extensions["lantian"].sessions() as s:
        stmt = select(Listing).order_by(Listing.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Listing, key) == value)
        return list(s.scalars(stmt))


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture()
def transport(login: Any) -> dict:
    return login("transport")


# --- three strikes --------------------------------------------------------------------------


def test_two_strikes_do_not_list_three_do(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    ids = [violate(app, plate(1), d("2026-04-01")), violate(app, plate(1), d("2026-04-02"))]
    assert entries(app) == []
    ids.append(violate(app, plate(1), d("2026-04-03")))
    (entry,) = entries(app)
    assert (entry.list_kind, entry.rule, entry.subject_type) == ("blacklist", "three_strikes", "vehicle")
    assert (entry.period_start, entry.period_end) == (d("2026-03-10"), d("2027-03-09"))
    assert sorted(entry.evidence) == ids


def test_three_violations_on_one_day_are_one_strike(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    for minute in range(3):
        violate(app, plate(1), d("2026-04-01"), minute)
    assert entries(app) == []
    with app.extensions["lantian"].sessions() as s:
        assert len(s.scalars(select(Strike)).all()) == 1


def test_the_earliest_violation_of_the_day_holds_the_strike_whatever_the_upload_order(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    late_upload_later_time = violate(app, plate(1), d("2026-04-01"), 30)
    earlier_time = violate(app, plate(1), d("2026-04-01"), 5)
    with app.extensions["lantian"].sessions() as s:
        assert s.scalars(select(Strike.violation_id)).one() == earlier_time != late_upload_later_time


def test_a_strike_the_day_before_the_cycle_does_not_count(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    violate(app, plate(1), d("2026-03-09"))
    violate(app, plate(1), d("2026-04-01"))
    violate(app, plate(1), d("2026-04-02"))
    assert entries(app) == []
    violate(app, plate(1), d("2026-03-10"))  # last_on itself counts
    assert len(entries(app)) == 1


def test_next_due_on_is_outside_the_cycle(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle={"last_on": "2025-03-10",
                                                                        "next_due_on": "2026-03-10"}))
    for day in ("2026-03-08", "2026-03-09", "2026-03-10"):
        violate(app, plate(1), d(day))
    assert entries(app) == []


def test_without_a_cycle_the_365_days_up_to_the_violation(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=None))
    violate(app, plate(1), d("2025-04-01"))
    violate(app, plate(1), d("2025-10-01"))
    violate(app, plate(1), d("2026-04-01"))  # 365 days after the first: the first is out of the window
    assert entries(app) == []
    violate(app, plate(1), d("2026-04-02"))
    (entry,) = entries(app)
    assert (entry.period_start, entry.period_end) == (d("2025-04-03"), d("2026-04-02"))


def test_a_late_earlier_strike_moves_a_rolling_period_in_place(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=None))
    ids = {day: violate(app, plate(1), d(day)) for day in ("2026-04-02", "2026-04-03", "2026-04-04")}
    (entry,) = entries(app)
    assert entry.period_end == d("2026-04-04")
    ids["2026-04-01"] = violate(app, plate(1), d("2026-04-01"))  # uploaded late after an outage
    (revised,) = entries(app)
    assert revised.id == entry.id and revised.active
    assert (revised.period_start, revised.period_end) == (d("2025-04-04"), d("2026-04-03"))
    assert sorted(revised.evidence) == sorted(ids[k] for k in ("2026-04-01", "2026-04-02", "2026-04-03"))


def test_non_operating_and_unknown_use_go_on_key_supervision(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), use_nature="non_operating"), vehicle(plate(2), use_nature=None))
    for n in (1, 2):
        for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
            violate(app, plate(n), d(day))
    assert [(e.list_kind, e.rule) for e in entries(app)] == [("key_supervision", "three_strikes")] * 2


def test_re_registered_as_non_operating_lists_on_key_supervision_from_then_on(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day))
    put_vehicles(client, transport, vehicle(plate(1), use_nature="non_operating",
                                             inspection_cycle={"last_on": "2027-03-10", "next_due_on": "2028-03-10"}))
    for day in ("2027-04-01", "2027-04-02", "2027-04-03"):
        violate(app, plate(1), d(day))
    assert [(e.list_kind, e.period_start, e.active) for e in entries(app)] == [
        ("blacklist", d("2026-03-10"), True), ("key_supervision", d("2027-03-10"), True)]


def test_an_overdue_inspection_never_makes_a_vehicle_immune(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle={"last_on": "2025-03-10",
                                                                        "next_due_on": "2026-03-10"}))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day))
    (entry,) = entries(app)  # the open cycle from the due day on
    assert (entry.period_start, entry.period_end, entry.active) == (d("2026-03-10"), None, True)
    put_vehicles(client, transport, vehicle(plate(1)))  # renewed on the due day: the same cycle's entry
    (entry,) = entries(app)
    assert (entry.period_start, entry.period_end, entry.active) == (d("2026-03-10"), d("2027-03-09"), True)


def test_later_strikes_in_the_cycle_join_the_evidence_never_a_second_entry(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    ids = [violate(app, plate(1), d(f"2026-04-0{i}")) for i in range(1, 6)]
    (entry,) = entries(app)
    assert sorted(entry.evidence) == ids


def test_delisted_then_one_new_strike_in_the_same_period_does_not_relist(app, client, transport, login):
    put_vehicles(client, transport, vehicle(plate(1)))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day))
    (entry,) = entries(app)
    r = client.post(f"/api/v1/blacklist/{entry.id}/delist", headers=transport, json={"reason": "整改完成"})
    assert r.status_code == 200 and r.get_json()["active"] is False
    violate(app, plate(1), d("2026-04-04"))
    (again,) = entries(app)
    assert again.active is False and len(again.evidence) == 3
    # The next cycle lists afresh.
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle={"last_on": "2027-03-10",
                                                                        "next_due_on": "2028-03-10"}))
    for day in ("2027-04-01", "2027-04-02", "2027-04-03"):
        violate(app, plate(1), d(day))
    assert [e.period_start for e in entries(app, active=True)] == [d("2027-03-10")]


def test_every_listing_and_delisting_is_audited_with_its_evidence(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    ids = [violate(app, plate(1), d(f"2026-04-0{i}")) for i in range(1, 4)]
    (entry,) = entries(app)
    client.post(f"/api/v1/blacklist/{entry.id}/delist", headers=transport, json={"reason": "复核撤销"})
    with app.extensions["lantian"].sessions() as s:
        records = s.scalars(select(AuditRecord).where(AuditRecord.subject_type == "listing")
                            .order_by(AuditRecord.id)).all()
    assert [r.action for r in records] == ["listing.created", "listing.delisted"]
    assert records[0].data["evidence"] == ids and records[1].data["evidence"] == ids
    assert records[1].reason == "复核撤销" and records[1].actor.startswith("user:")


# --- fleets ---------------------------------------------------------------------------------


def fleet_of(client: Any, headers: dict, fleet_no: int, size: int, first_plate: int) -> list[str]:
    put_fleets(client, headers, fleet_no)
    plates = [plate(first_plate + i) for i in range(size)]
    put_vehicles(client, headers, *[vehicle(p, fleet_code=uscc(fleet_no)) for p in plates])
    return plates


@pytest.mark.parametrize(("size", "violating", "listed", "ratio"), [
    (10, 1, True, 0.1), (11, 1, False, None), (20, 1, False, None), (20, 2, True, 0.1),
])
def test_fleet_ten_percent(app, client, transport, size, violating, listed, ratio):
    plates = fleet_of(client, transport, 1, size, 100)
    ids = [violate(app, p, d("2026-05-01")) for p in plates[:violating]]
    found = entries(app, rule="fleet_ten_percent")
    assert bool(found) is listed
    if listed:
        (entry,) = found
        assert entry.ratio == ratio and sorted(entry.evidence) == ids
        assert (entry.period_start, entry.period_end) == (d("2026-01-01"), d("2026-12-31"))


def test_fleet_year_is_the_local_calendar_year(app, client, transport):
    plates = fleet_of(client, transport, 1, 20, 100)
    violate(app, plates[0], d("2025-12-31"))
    violate(app, plates[1], d("2026-01-01"))
    assert entries(app, rule="fleet_ten_percent") == []
    violate(app, plates[2], d("2026-06-01"))
    assert [e.period_start for e in entries(app, rule="fleet_ten_percent")] == [d("2026-01-01")]


def test_fleet_evidence_grows_and_the_ratio_stays_as_listed(app, client, transport):
    plates = fleet_of(client, transport, 1, 10, 100)
    ids = [violate(app, plates[0], d("2026-05-01")), violate(app, plates[1], d("2026-05-02"))]
    (entry,) = entries(app, rule="fleet_ten_percent")
    assert entry.ratio == 0.1 and sorted(entry.evidence) == ids


def test_selling_a_violator_keeps_the_sellers_year_and_buying_imports_nothing(app, client, transport):
    a = fleet_of(client, transport, 1, 11, 100)
    fleet_of(client, transport, 2, 9, 200)
    first = violate(app, a[0], d("2026-05-01"))
    assert entries(app, rule="fleet_ten_percent") == []  # 1 of 11
    # Fleet 1 sells the violator to fleet 2: it still had it when detected, now 1 of 10 = 10%.
    put_vehicles(client, transport, vehicle(a[0], fleet_code=uscc(2), valid_from="2026-06-01"))
    (entry,) = entries(app, rule="fleet_ten_percent")
    assert (entry.subject_id, entry.ratio, entry.evidence) == (1, 0.1, [first])
    # Fleet 2 (now 10 vehicles) imported nothing; the truck's next violation is its own.
    assert entries(app, rule="fleet_ten_percent", subject_id=2) == []
    again = violate(app, a[0], d("2026-06-02"))
    (second,) = entries(app, rule="fleet_ten_percent", subject_id=2)
    assert (second.ratio, second.evidence) == (0.1, [again])
    assert entries(app, rule="fleet_ten_percent", subject_id=1)[0].evidence == [first]


def test_a_late_violation_from_before_a_sale_counts_for_the_seller(app, client, transport):
    a = fleet_of(client, transport, 1, 10, 100)
    fleet_of(client, transport, 2, 20, 200)
    put_vehicles(client, transport, vehicle(a[0], fleet_code=uscc(2), valid_from="2026-06-01"))
    violate(app, a[0], d("2026-05-31"))  # uploaded after the sale, detected before it: fleet 1's (1 of 9)
    (entry,) = entries(app)
    assert (entry.subject_type, entry.subject_id) == ("fleet", 1)
    violate(app, a[0], d("2026-06-01"))  # the day of the sale: fleet 2's, 1 of 21
    assert len(entries(app)) == 1


def test_a_fleet_reaches_ten_percent_when_a_clean_vehicle_leaves(app, client, transport):
    plates = fleet_of(client, transport, 1, 11, 100)
    violate(app, plates[0], d("2026-05-01"))
    assert entries(app, rule="fleet_ten_percent") == []
    put_vehicles(client, transport, vehicle(plates[10], fleet_code=None))
    (entry,) = entries(app, rule="fleet_ten_percent")
    assert entry.ratio == 0.1


@needs_postgres("row locks need PostgreSQL (SQLite serialises writers anyway)")
def test_concurrent_workers_list_a_fleet_exactly_once(app, client, transport):
    plates = fleet_of(client, transport, 1, 20, 100)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(p: str) -> None:
        try:
            barrier.wait()
            violate(app, p, d("2026-05-01"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in plates[:4]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (entry,) = entries(app, rule="fleet_ten_percent")
    assert entry.ratio == 0.1 and len(entry.evidence) == 4  # listed at 2 of 20, later evidence joined


# --- the people's side ----------------------------------------------------------------------


def listed_vehicle(app: Flask, client: Any, headers: dict, n: int = 1, **overrides: Any) -> None:
    put_vehicles(client, headers, vehicle(plate(n), **overrides))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(n), d(day))


@pytest.mark.parametrize(("role", "status"), [
    ("police", 200), ("env_officer", 200), ("transport", 200), ("admin", 200),
    ("repair_station", 403), ("inspection_station", 403),
])
def test_blacklist_roles(app, client, login, runner, role, status):
    from tests.conftest import cli_json

    org = None
    if role in ("repair_station", "inspection_station"):
        org = "ORG1"
        cli_json(runner, "orgs", "create", "--code", org, "--kind", role, "--name", "x", "--region", "320200")
    headers = login(role, org=org)
    assert client.get("/api/v1/blacklist", headers=headers).status_code == status
    assert client.get("/api/v1/key-supervision", headers=headers).status_code == status
    assert client.get("/api/v1/blacklist").status_code == 401


@pytest.mark.parametrize(("role", "status"), [("transport", 200), ("env_officer", 200), ("admin", 200),
                                              ("police", 403)])
def test_delist_roles(app, client, login, transport, role, status):
    listed_vehicle(app, client, transport)
    (entry,) = entries(app)
    headers = login(role, username=f"delister-{role}")
    r = client.post(f"/api/v1/blacklist/{entry.id}/delist", headers=headers, json={"reason": "核查"})
    assert r.status_code == status


def test_delist_needs_a_reason_and_only_once(app, client, transport):
    listed_vehicle(app, client, transport)
    (entry,) = entries(app)
    url = f"/api/v1/blacklist/{entry.id}/delist"
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = client.post(url, headers=transport, json=body)
        assert r.status_code == 422 and "reason" in r.get_json()["error"]["fields"]
    assert client.post(url, headers=transport, json={"reason": "整改"}).status_code == 200
    r = client.post(url, headers=transport, json={"reason": "again"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "already_delisted"
    assert client.post("/api/v1/blacklist/999999/delist", headers=transport, json={"reason": "x"}).status_code == 404


def test_blacklist_list_shape_filters_and_cursor(app, client, transport, login):
    put_fleets(client, transport, 1)
    plates = [plate(100 + i) for i in range(10)]
    put_vehicles(client, transport, *[vehicle(p, fleet_code=uscc(1)) for p in plates])
    for n in range(3):
        for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
            violate(app, plates[n], d(day))
    police = login("police")
    items = client.get("/api/v1/blacklist?subject=vehicle&active=true", headers=police).get_json()["items"]
    assert len(items) == 3 and {i["subject"]["type"] for i in items} == {"vehicle"}
    first = items[-1]
    assert first["subject"] == {"type": "vehicle", "plate": plates[0], "plate_color": "yellow"}
    assert first["rule"] == "three_strikes" and first["active"] is True and first["ratio"] is None
    assert first["period"] == {"start": "2026-03-10", "end": "2027-03-09"} and len(first["evidence"]) == 3
    (fleet,) = client.get("/api/v1/blacklist?subject=fleet", headers=police).get_json()["items"]
    assert fleet["subject"] == {"type": "fleet", "code": uscc(1), "name": "运输公司1"} and fleet["ratio"] == 0.1
    page1 = client.get("/api/v1/blacklist?limit=2", headers=police).get_json()
    page2 = client.get(f"/api/v1/blacklist?limit=2&cursor={page1['next_cursor']}", headers=police).get_json()
    assert len(page1["items"]) == 2 and len(page2["items"]) == 2 and page2["next_cursor"] is None
    assert {i["id"] for i in page1["items"]}.isdisjoint({i["id"] for i in page2["items"]})
    client.post(f"/api/v1/blacklist/{first['id']}/delist", headers=transport, json={"reason": "r"})
    assert len(client.get("/api/v1/blacklist?active=false", headers=police).get_json()["items"]) == 1
    assert len(client.get("/api/v1/blacklist?active=true", headers=police).get_json()["items"]) == 3


def test_region_scoping(app, client, transport, login):
    listed_vehicle(app, client, transport, 1, region="320200")
    listed_vehicle(app, client, transport, 2, region="320500")
    wuxi = login("police", region="320200")
    assert [i["subject"]["plate"] for i in client.get("/api/v1/blacklist", headers=wuxi).get_json()["items"]] == [
        plate(1)]
    everyone = login("env_officer")
    assert len(client.get("/api/v1/blacklist?region=320500", headers=everyone).get_json()["items"]) == 1
    other = entries(app, subject_id=2)[0]
    r = client.post(f"/api/v1/blacklist/{other.id}/delist", headers=login("transport", region="320200"),
                    json={"reason": "x"})
    assert r.status_code == 404


def test_public_disclosure_masks_plates_and_needs_no_token(app, client, transport):
    listed_vehicle(app, client, transport, 1)
    listed_vehicle(app, client, transport, 2)
    (delisted,) = entries(app, subject_id=2)
    client.post(f"/api/v1/blacklist/{delisted.id}/delist", headers=transport, json={"reason": "x"})
    r = client.get("/api/v1/public/blacklist")
    assert r.status_code == 200
    (item,) = r.get_json()["items"]
    assert item == {"subject": {"type": "vehicle", "plate": "苏B****1", "plate_color": "yellow"},
                    "rule": "three_strikes", "listed_on": item["listed_on"]}
    text = client.get("/api/v1/public/blacklist.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["subject_type", "plate", "plate_color", "fleet_code", "fleet_name", "rule", "listed_on"]
    assert rows[1][:3] == ["vehicle", "苏B****1", "yellow"] and len(rows) == 2
    assert plate(1) not in text and "LZZ" not in text


def test_vehicle_status_shows_listings(app, client, transport, login):
    listed_vehicle(app, client, transport, 1, remote_obd=False)
    body = client.get(f"/api/v1/vehicles/{plate(1)}?plate_color=yellow", headers=login("police")).get_json()
    assert body["blacklisted"] is True
    assert [e["rule"] for e in body["listings"]] == ["three_strikes"]
    assert body["key_supervision"] == ["no_remote_obd"]


# --- recompute ------------------------------------------------------------------------------


def test_recompute_keeps_a_consistent_state_and_withdraws_what_the_history_no_longer_supports(
        app, client, transport, runner):
    from tests.conftest import cli_json

    listed_vehicle(app, client, transport, 1)
    before = [(e.id, sorted(e.evidence)) for e in entries(app)]
    summary = cli_json(runner, "blacklist", "recompute")
    assert summary["strikes"] == 3 and summary["created"] == 0 and summary["active"] == 1
    assert [(e.id, sorted(e.evidence)) for e in entries(app)] == before
    # A policy of four strikes no longer supports the entry: it is withdrawn, not deleted.
    app.extensions["lantian"].settings.policy = app.extensions["lantian"].settings.policy.model_copy(
        update={"strikes_threshold": 4})
    summary = cli_json(runner, "blacklist", "recompute")
    assert summary["withdrawn"] == 1 and summary["active"] == 0
    (entry,) = entries(app)
    assert entry.active is False and entry.delisted_by == "cli:recompute"


# --- end to end -----------------------------------------------------------------------------


def test_remote_sensing_violations_list_a_vehicle(app, client, transport, station, drain, login):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=None))
    from tests.factories import event

    now = datetime.now(CST).replace(microsecond=0)
    # Local noon of today, or of yesterday before noon: in the past, and far from midnight.
    noon = now.replace(hour=12, minute=0, second=0) - timedelta(days=1 if now.hour < 12 else 0)
    high = {"no_ppm": 1600}
    # Pairs of consecutive exceedances (two trips, more than the minimum gap apart) on three
    # different days: three violations, three strikes.
    for day_back in (2, 1, 0):
        for k in range(2):
            at = noon - timedelta(days=day_back, hours=3 - 2 * k)
            r = station.post_json("/api/v1/remote-sensing/events",
                                  event(f"e{day_back}-{k}", at=at, plate=plate(1), measurements=high))
            assert r.status_code == 202, r.get_json()
            drain()
    items = client.get("/api/v1/blacklist", headers=login("police")).get_json()["items"]
    assert len(items) == 1 and items[0]["subject"]["plate"] == plate(1) and len(items[0]["evidence"]) == 3
