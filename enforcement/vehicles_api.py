"""What police and officers see of one vehicle."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import plates, registry
from core.errors import NotFound
from core.identity import Role
from core.web import current_person, read_db, require_person
from enforcement import vehicle_status
from schemas.registry import VehicleQuery

blp = Blueprint("vehicles", __name__, url_prefix="/api/v1/vehicles", description="Vehicle status")


@blp.get("/<plate>")
@require_person(Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)
@blp.arguments(VehicleQuery, location="query")
def get_vehicle(query: dict[str, Any], plate: str) -> dict[str, Any]:
    """One vehicle's status.

    Its registry fields, open case, strikes in its current inspection cycle (`cycle_violations`),
    listings and key-supervision reasons; with `history=true` also the registry's versions and every
    inspection cycle on record.
    """
    session = read_db()
    vehicle = registry.find_vehicle(session, plates.clean_plate(plate), query.get("plate_color"))
    if vehicle is None or not current_person().sees(vehicle.region):
        raise NotFound("no such vehicle", code="vehicle_not_found")
    return vehicle_status.status(session, vehicle, with_history=query["history"])
