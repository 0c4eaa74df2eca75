"""Who may write which registry rows: a writer with a region writes only inside it.

DOMAIN.md section 7 ("Jurisdiction"): a regional transport officer creates or changes only
vehicles and fleets whose current and new region are within their region (403
`outside_your_region`). Where API.md is silent:
- a batch is refused whole, naming every row outside the region, and nothing is stored:
  a registry export is one file, and half of it applied is harder to put right than none;
- a row without `region` keeps its current one, so the current region is also the new one;
  a new row without one would belong to no region and is refused;
- a provisional vehicle's region is where it was seen, not a registration: registering it
  checks only the new region, so the registration district can register an outside
  vehicle that was seen elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core import regions
from core.errors import Forbidden
from core.registry import Fleet, Vehicle

_CHUNK = 500  # bounded IN lists, whatever the batch


def outside(scope: str | None, current: str | None, new: str | None, *, current_binds: bool) -> bool:
    """Whether a writer scoped to `scope` may not move a row from `current` to `new`."""
    if scope is None:
        return False
    return not regions.contains(scope, new) or (current_binds and not regions.contains(scope, current))


def _refuse(scope: str | None, what: str, refused: list[str]) -> None:
    if refused:
        raise Forbidden(f"{len(refused)} {what} lie outside your region {scope}: nothing was stored",
                        code="outside_your_region", fields={what: refused})


def check_vehicles(session: Session, scope: str | None, vehicles: Iterable[Mapping[str, Any]]) -> None:
    """Refuse the whole batch when any vehicle's current or new region is outside `scope`."""
    if scope is None:
        return
    items = list(vehicles)
    keys = [(v["plate"], v["plate_color"]) for v in items]
    found: dict[tuple[str, str], tuple[bool, str | None]] = {}
    for start in range(0, len(keys), _CHUNK):
        rows = session.execute(select(Vehicle.plate, Vehicle.plate_color, Vehicle.registered, Vehicle.region).where(
            tuple_(Vehicle.plate, Vehicle.plate_color).in_(keys[start : start + _CHUNK])))
        found |= {(plate, color): (registered, region) for plate, color, registered, region in rows}
    refused = []
    for item, key in zip(items, keys, strict=True):
        registered, current = found.get(key, (False, None))
        new = item["region"] if "region" in item else current
        if outside(scope, current, new, current_binds=registered):
            refused.append(f"{key[0]} ({key[1]}): region {current or '-'} -> {new or '-'}")
    _refuse(scope, "vehicles", refused)


def check_fleets(session: Session, scope: str | None, fleets: Iterable[Mapping[str, Any]]) -> None:
    """Refuse the whole batch when any fleet's current or new region is outside `scope`."""
    if scope is None:
        return
    items = list(fleets)
    codes = [f["code"] for f in items]
    found: dict[str, str] = {}
    for start in range(0, len(codes), _CHUNK):
        found |= dict(session.execute(
            select(Fleet.code, Fleet.region).where(Fleet.code.in_(codes[start : start + _CHUNK]))).all())
    refused = [f"{f['code']}: region {found.get(f['code'], '-')} -> {f['region']}" for f in items
               if outside(scope, found.get(f["code"]), f["region"], current_binds=f["code"] in found)]
    _refuse(scope, "fleets", refused)
