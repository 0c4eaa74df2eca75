"""What an officer sees beside each snapshot: the station, the vehicle the plate reads as,
the estimate and the plume the analyser outlined. Read only: looking at a snapshot never
creates a provisional vehicle (only a confirmation does, in `reviews.review`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.identity import Station
from core.plates import clean_plate
from core.registry import Fleet, Vehicle
from core.settings import Policy
from enforcement import reviews
from remote_sensing import snapshots
from remote_sensing.models import Snapshot


def cards(session: Session, rows: Sequence[Snapshot], policy: Policy) -> list[dict[str, Any]]:
    """Each snapshot as the API shows it, plus station, vehicle, image sizes, plume and the
    level a confirmation starts at; four queries for a whole page."""
    stations = _by_id(session, Station, {row.station_id for row in rows})
    read = {row.id: (clean_plate(row.payload["plate"]["number"]), row.payload["plate"]["color"]) for row in rows}
    wanted = tuple_(Vehicle.plate, Vehicle.plate_color).in_(set(read.values()))
    by_plate = {(v.plate, v.plate_color): v for v in session.scalars(select(Vehicle).where(wanted))} if rows else {}
    filed = _by_id(session, Vehicle, {row.vehicle_id for row in rows if row.vehicle_id is not None})
    vehicles = {row.id: filed.get(row.vehicle_id) if row.vehicle_id else by_plate.get(read[row.id]) for row in rows}
    fleets = _by_id(session, Fleet, {v.fleet_id for v in vehicles.values() if v is not None and v.fleet_id})
    out = []
    for row in rows:
        station, vehicle = stations.get(row.station_id), vehicles[row.id]
        fleet = fleets.get(vehicle.fleet_id) if vehicle is not None and vehicle.fleet_id else None
        out.append({
            **snapshots.view(row),
            "station": {"code": station.code, "name": station.name} if station else None,
            "vehicle": None if vehicle is None else {
                "plate": vehicle.plate, "plate_color": vehicle.plate_color, "registered": vehicle.registered,
                "fuel_type": vehicle.fuel_type, "fleet": {"code": fleet.code, "name": fleet.name} if fleet else None,
            },
            "sizes": [(image["width"], image["height"]) for image in row.images],
            "plume": plume(row),
            "suggested": reviews.suggested_level(row, policy),
        })
    return out


def plume(row: Snapshot) -> dict[str, Any] | None:
    """The analyser's plume outline (`estimate["plume"]`, original image pixels) as SVG
    points, or None when there is none or it does not fit the image it names."""
    found = (row.estimate or {}).get("plume")
    if not isinstance(found, dict) or not isinstance(found.get("image"), int):
        return None
    n = found["image"]
    if not 0 <= n < len(row.images):
        return None
    try:
        points = " ".join(f"{float(x):g},{float(y):g}" for x, y in found.get("polygon") or [])
        box = [float(v) for v in found.get("bbox") or []]
    except (TypeError, ValueError):
        return None
    bbox = dict(zip(("x", "y", "w", "h"), box, strict=True)) if len(box) == 4 else None
    if not points and bbox is None:
        return None
    return {"image": n, "points": points, "bbox": bbox}


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}
