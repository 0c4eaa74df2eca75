"""Region-scoped registry writes (DOMAIN.md section 7, "Jurisdiction"), in the role x region
matrix: a writer with a region creates or changes only rows whose current and new region are
within it; refused batches store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import plates
from core.registry import Fleet, Vehicle
from tests.factories import vehicle
from tests.integration.test_blacklist import uscc

FLEETS = "/api/v1/registry/fleets"
VEHICLES = "/api/v1/registry/vehicles"
IN, IN_TOO, OUT = "320205", "320211", "320500"  # two districts of 无锡 (320200), and 苏州

# role, region of the person: who writes (police may not write the registry at all).
WRITERS = [("admin", None), ("transport", None), ("transport", "320200"), ("police", "320200")]

# name: (current vehicle (registered, region) or None, the row sent, within 320200?)
VEHICLE_CASES: dict[str, tuple[tuple[bool, str] | None, dict[str, Any], bool]] = {
    "create inside": (None, vehicle(region=IN), True),
    "create outside": (None, vehicle(region=OUT), False),
    "create without a region": (None, vehicle(region=None), False),
    "move within": ((True, IN), vehicle(region=IN_TOO), True),
    "move out": ((True, IN), vehicle(region=OUT), False),
    "take in from outside": ((True, OUT), vehicle(region=IN), False),
    # The case: another city's truck set to electric, its region left out of the row.
    "change outside, region kept": ((True, OUT), {k: v for k, v in vehicle(fuel_type="electric").items()
                                                  if k != "region"}, False),
    "change inside, region kept": ((True, IN), {k: v for k, v in vehicle(fuel_type="electric").items()
                                                if k != "region"}, True),
    # An outside vehicle seen elsewhere is registered by its registration district.
    "register a provisional vehicle seen outside": ((False, OUT), vehicle(region=IN), True),
    "register a provisional vehicle outside": ((False, IN), vehicle(region=OUT), False),
}


def _expected(role: str, region: str | None, inside: bool) -> tuple[int, str | None]:
    if role == "police":
        return 403, "forbidden"
    if region is None or inside:
        return 200, None
    return 403, "outside_your_region"


def _vehicles(app: Any) -> list[tuple[Any, ...]]:
    with app.extensions["lantian"].sessions() as s:
        return [tuple(r) for r in s.execute(select(Vehicle.plate, Vehicle.registered, Vehicle.region,
                                                   Vehicle.fuel_type).order_by(Vehicle.plate))]


def _store_vehicle(app: Any, plate: str, registered: bool, region: str) -> None:
    with app.extensions["lantian"].sessions() as s:
        s.add(Vehicle(plate=plate, plate_color="yellow", plate_key=plates.confusion_key(plate), registered=registered,
                      region=region, fuel_type="diesel"))
        s.commit()


@pytest.mark.parametrize("role, region", WRITERS, ids=[f"{r}-{g or 'all'}" for r, g in WRITERS])
@pytest.mark.parametrize("case", list(VEHICLE_CASES))
def test_vehicle_writes_by_role_and_region(app, client, login, role, region, case):
    current, row, inside = VEHICLE_CASES[case]
    if current is not None:
        _store_vehicle(app, row["plate"], *current)
    before = _vehicles(app)
    r = client.put(VEHICLES, json={"vehicles": [row]}, headers=login(role, region))
    status, code = _expected(role, region, inside)
    assert r.status_code == status, r.get_json()
    if status == 200:
        (stored,) = _vehicles(app)
        assert stored[1] is True and stored[2] == row.get("region", current[1] if current else None)
    else:
        assert r.get_json()["error"]["code"] == code
        assert _vehicles(app) == before  # nothing stored
    if code == "outside_your_region":
        assert r.get_json()["error"]["fields"]["vehicles"] == [
            f"苏B12345 (yellow): region {current[1] if current else '-'} -> "
            f"{row.get('region', current[1] if current else None) or '-'}"]


def test_a_batch_with_one_row_outside_is_refused_whole(app, client, login):
    _store_vehicle(app, "苏B00002", True, OUT)
    rows = [vehicle("苏B00001", region=IN), vehicle("苏B00002", region=IN), vehicle("苏B00003", region=OUT)]
    r = client.put(VEHICLES, json={"vehicles": rows}, headers=login("transport", "320200"))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "outside_your_region"
    assert r.get_json()["error"]["fields"]["vehicles"] == [
        "苏B00002 (yellow): region 320500 -> 320205", "苏B00003 (yellow): region - -> 320500"]
    assert _vehicles(app) == [("苏B00002", True, OUT, "diesel")]


# name: (current fleet region or None, new region, within 320200?)
FLEET_CASES: dict[str, tuple[str | None, str, bool]] = {
    "create inside": (None, IN, True),
    "create outside": (None, OUT, False),
    "move within": (IN, IN_TOO, True),
    "move out": (IN, OUT, False),
    "take in from outside": (OUT, IN, False),
    "rename outside": (OUT, OUT, False),
}


@pytest.mark.parametrize("role, region", WRITERS, ids=[f"{r}-{g or 'all'}" for r, g in WRITERS])
@pytest.mark.parametrize("case", list(FLEET_CASES))
def test_fleet_writes_by_role_and_region(app, client, login, role, region, case):
    current, new, inside = FLEET_CASES[case]
    code = uscc(1)
    if current is not None:
        with app.extensions["lantian"].sessions() as s:
            s.add(Fleet(code=code, name="顺达物流", region=current))
            s.commit()
    r = client.put(FLEETS, json={"fleets": [{"code": code, "name": "新名称", "region": new}]},
                   headers=login(role, region))
    status, error = _expected(role, region, inside)
    assert r.status_code == status, r.get_json()
    with app.extensions["lantian"].sessions() as s:
        stored = s.execute(select(Fleet.name, Fleet.region)).all()
    if status == 200:
        assert [tuple(f) for f in stored] == [("新名称", new)]
    else:
        assert r.get_json()["error"]["code"] == error
        assert [tuple(f) for f in stored] == ([("顺达物流", current)] if current else [])
