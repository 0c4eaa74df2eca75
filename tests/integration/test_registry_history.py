"""The registry over time and the listings that follow it (DOMAIN.md section 7): versions and
cycles, strikes by the cycle of their day, fleets by membership at detection, relisting after
a delisting, provisional vehicles registered later, and recompute agreeing with all of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select, update

from core.audit import AuditRecord
from core.registry import Vehicle
from enforcement import listings
from enforcement.models import Listing
from remote_sensing.processing import provisional_row
from tests.factories import CST, vehicle
from tests.integration.test_blacklist import d, entries, plate, put_fleets, put_vehicles, uscc, violate

A = {"last_on": "2025-03-10", "next_due_on": "2026-03-10"}
B = {"last_on": "2026-03-10", "next_due_on": "2027-03-10"}


@pytest.fixture()
def transport(login: Any) -> dict:
    return login("transport")


def status(client: Any, headers: dict, plate_: str, **query: str) -> dict:
    r = client.get(f"/api/v1/vehicles/{plate_}", headers=headers, query_string={"plate_color": "yellow", **query})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def audit_actions(app: Flask, prefix: str) -> list[str]:
    with app.extensions["lantian"].sessions() as s:
        return list(s.scalars(select(AuditRecord.action).where(AuditRecord.action.like(f"{prefix}%"))
                              .order_by(AuditRecord.id)))


def delist(app: Flask, client: Any, headers: dict, entry: Listing, at: str) -> None:
    """A person delists the entry; `at` (local) is when, on the test's clock."""
    r = client.post(f"/api/v1/blacklist/{entry.id}/delist", headers=headers, json={"reason": "整改完成"})
    assert r.status_code == 200
    with app.extensions["lantian"].sessions() as s:
        s.execute(update(Listing).where(Listing.id == entry.id)
                  .values(delisted_at=datetime.fromisoformat(at).replace(tzinfo=CST).astimezone(UTC)))
        s.commit()


def recompute(app: Flask) -> dict[str, int]:
    rt = app.extensions["lantian"]
    with rt.sessions() as s:
        summary = listings.recompute(s, rt.settings.policy)
        s.commit()
    return summary


# --- versions and cycles --------------------------------------------------------------------


def test_upserts_keep_versions_of_what_changed_and_every_cycle(app, client, transport):
    put_fleets(client, transport, 1, 2)
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(1), inspection_cycle=A))
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(1), inspection_cycle=A))  # the same again
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(2), valid_from="2026-06-01",
                                            inspection_cycle=[A, B]))
    got = status(client, transport, plate(1), history="true")
    assert got["vehicle"]["fleet_code"] == uscc(2) and got["vehicle"]["inspection_cycle"] == B
    versions = got["history"]["versions"]
    assert [(v["valid_from"], v["fleet_code"], v["use_nature"]) for v in versions] == [
        ("2019-05-01", uscc(1), "operating"), ("2026-06-01", uscc(2), "operating")]  # first: from registration
    assert [(c["last_on"], c["next_due_on"]) for c in got["history"]["inspection_cycles"]] == [
        (A["last_on"], A["next_due_on"]), (B["last_on"], B["next_due_on"])]
    assert "history" not in status(client, transport, plate(1))
    # A body that names only the current cycle never deletes the older one.
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(2), inspection_cycle=B))
    assert len(status(client, transport, plate(1), history="true")["history"]["inspection_cycles"]) == 2
    assert audit_actions(app, "registry.") == ["registry.fleet_created", "registry.fleet_created",
                                               "registry.vehicle_created", "registry.vehicle_changed"]


def test_a_backdated_version_leaves_the_later_one_current(app, client, transport):
    put_fleets(client, transport, 1, 2)
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(1)))
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=uscc(2), valid_from="2026-06-01"))
    put_vehicles(client, transport, vehicle(plate(1), fleet_code=None, valid_from="2026-01-01"))
    got = status(client, transport, plate(1), history="true")
    assert got["vehicle"]["fleet_code"] == uscc(2)
    assert [v["valid_from"] for v in got["history"]["versions"]] == ["2019-05-01", "2026-01-01", "2026-06-01"]


def test_fleet_changes_are_audited(app, client, transport):
    put_fleets(client, transport, 1)
    put_fleets(client, transport, 1)  # unchanged: nothing to record
    r = client.put("/api/v1/registry/fleets", headers=transport,
                   json={"fleets": [{"code": uscc(1), "name": "新名称", "region": "320200"}]})
    assert r.status_code == 200
    assert audit_actions(app, "registry.") == ["registry.fleet_created", "registry.fleet_changed"]


@pytest.mark.parametrize("body", [
    {"valid_from": "2999-01-01"},
    {"inspection_cycle": [A, A]},
    {"inspection_cycle": [{"last_on": "2026-03-10", "next_due_on": "2026-03-10"}]},
    {"inspection_cycle": "2026-03-10"},
])
def test_bad_history_422(client, transport, body):
    r = client.put("/api/v1/registry/vehicles", headers=transport, json={"vehicles": [vehicle(plate(1), **body)]})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["vehicles"]


# --- strikes by the cycle of their day ------------------------------------------------------


def test_a_late_strike_of_an_old_cycle_lists_that_cycle(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=[A, B]))
    violate(app, plate(1), d("2026-03-08"))
    violate(app, plate(1), d("2026-03-10"))  # next_due_on of A: the first day of B
    violate(app, plate(1), d("2026-03-11"))
    assert entries(app) == []
    violate(app, plate(1), d("2026-03-09"))  # uploaded late: A's last day
    assert entries(app) == []  # A has 2, B has 2
    violate(app, plate(1), d("2025-03-10"))  # A's first day
    (entry,) = entries(app)
    assert (entry.period_start, entry.period_end) == (d("2025-03-10"), d("2026-03-09"))
    assert recompute(app)["withdrawn"] == 0  # a past cycle's listing stays
    assert entries(app)[0].active


def test_strikes_before_the_first_cycle_never_join_it(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=B))
    for day in ("2026-03-07", "2026-03-08", "2026-03-11"):
        violate(app, plate(1), d(day))
    assert entries(app) == []  # two in the year counted back, one in B
    violate(app, plate(1), d("2025-03-10"))  # the first day of that year
    (entry,) = entries(app)
    assert (entry.period_start, entry.period_end) == (d("2025-03-10"), d("2026-03-09"))


def test_cycle_violations_count_strikes_of_the_open_cycle_when_overdue(app, client, transport):
    today = datetime.now(CST).date()
    cycle = {"last_on": str(today - timedelta(days=730)), "next_due_on": str(today - timedelta(days=365))}
    put_vehicles(client, transport, vehicle(plate(1), inspection_cycle=cycle))
    violate(app, plate(1), today - timedelta(days=366))  # the old cycle's last day
    violate(app, plate(1), today - timedelta(days=365))  # the due day: the open cycle's first
    violate(app, plate(1), today - timedelta(days=10))
    violate(app, plate(1), today - timedelta(days=10), minute=30)  # the same day: one strike
    assert status(client, transport, plate(1))["cycle_violations"] == 2


# --- fleets ---------------------------------------------------------------------------------


def test_exactly_ten_percent_counts_membership_at_detection(app, client, transport):
    put_fleets(client, transport, 1)
    put_vehicles(client, transport, *[vehicle(plate(100 + i), fleet_code=uscc(1)) for i in range(11)])
    put_vehicles(client, transport, vehicle(plate(300)))  # not in the fleet yet
    violate(app, plate(300), d("2026-05-01"))
    put_vehicles(client, transport, vehicle(plate(300), fleet_code=uscc(1), valid_from="2026-05-02"))
    assert entries(app) == []  # bought with its violation: 0 of 12
    violate(app, plate(100), d("2026-05-03"))
    assert entries(app) == []  # 1 of 12
    put_vehicles(client, transport, vehicle(plate(101), fleet_code=None), vehicle(plate(102), fleet_code=None))
    (entry,) = entries(app)  # 1 of 10, exactly 10%
    assert entry.ratio == 0.1


# --- after a delisting ----------------------------------------------------------------------


def test_three_more_strikes_after_a_delisting_list_the_cycle_again(app, client, transport):
    put_vehicles(client, transport, vehicle(plate(1)))
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day))
    (first,) = entries(app)
    delist(app, client, transport, first, "2026-04-05T10:00:00")
    violate(app, plate(1), d("2026-04-04"))  # uploaded late, detected before the delisting
    again = [violate(app, plate(1), d("2026-04-06")), violate(app, plate(1), d("2026-04-07"))]
    assert len(entries(app, active=True)) == 0
    again.append(violate(app, plate(1), d("2026-04-08")))
    (second,) = entries(app, active=True)
    assert (second.period_start, sorted(second.evidence)) == (first.period_start, again)
    summary = recompute(app)
    assert (summary["created"], summary["withdrawn"]) == (0, 0)


def test_a_fleet_is_listed_again_only_for_violations_after_the_delisting(app, client, transport):
    put_fleets(client, transport, 1)
    fleet = [plate(100 + i) for i in range(20)]
    put_vehicles(client, transport, *[vehicle(p, fleet_code=uscc(1)) for p in fleet])
    violate(app, fleet[0], d("2026-04-01"))
    violate(app, fleet[1], d("2026-04-02"))
    (first,) = entries(app)
    delist(app, client, transport, first, "2026-04-05T10:00:00")
    later = [violate(app, fleet[0], d("2026-04-06"))]
    assert entries(app, active=True) == []  # 1 of 20 since the delisting
    later.append(violate(app, fleet[2], d("2026-04-07")))
    (second,) = entries(app, active=True)
    assert (second.ratio, sorted(second.evidence)) == (0.1, later)


# --- provisional, then registered -----------------------------------------------------------


def outside(app: Flask, plate_: str, color: str) -> None:
    with app.extensions["lantian"].sessions() as s:
        s.execute(insert(Vehicle), [provisional_row(plate_, color, "320500")])
        s.commit()


def test_an_outside_vehicle_registered_later_keeps_one_entry_in_the_list_of_its_use(app, client, transport):
    outside(app, plate(1), "blue")
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day), color="blue")
    (entry,) = entries(app)
    assert entry.list_kind == "key_supervision"
    put_vehicles(client, transport, vehicle(plate(1), "blue"))  # registered, operating
    (moved,) = entries(app)
    assert (moved.id, moved.list_kind, moved.active) == (entry.id, "blacklist", True)
    assert "listing.moved" in audit_actions(app, "listing.")
    summary = recompute(app)
    assert (summary["created"], summary["moved"], summary["withdrawn"]) == (0, 0, 0)


def test_an_outside_vehicle_on_a_yellow_plate_is_presumed_operating(app, client, transport):
    outside(app, plate(1), "yellow")
    for day in ("2026-04-01", "2026-04-02", "2026-04-03"):
        violate(app, plate(1), d(day))
    (entry,) = entries(app)
    assert (entry.list_kind, entry.basis) == ("blacklist", "rolling")
    put_vehicles(client, transport, vehicle(plate(1), use_nature="non_operating"))
    assert [(e.list_kind, e.active) for e in entries(app)] == [("key_supervision", True)]
