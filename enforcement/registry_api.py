"""The vehicle registry upsert, here because it re-evaluates listings (core may not import enforcement)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import registry, registry_scope
from core.errors import Unprocessable
from core.identity import Role
from core.web import current_person, db, require_person, runtime
from enforcement import cases, listings
from schemas.registry import UpsertOut, VehiclesIn

blp = Blueprint("registry_vehicles", __name__, url_prefix="/api/v1/registry", description="Vehicle registry")


@blp.put("/vehicles")
@require_person(Role.TRANSPORT)
@blp.arguments(VehiclesIn)
@blp.response(200, UpsertOut)
@blp.alt_response(403, description="forbidden, outside_your_region (the whole batch refused, nothing stored)")
def put_vehicles(body: dict[str, Any]) -> registry.UpsertCount:
    """Create or update registered vehicles by plate and plate colour (up to 5,000 a call).

    Fleets named by `fleet_code` must exist first. Fleet, use nature, fuel type and region are kept
    as versions from `valid_from` (default today); inspection cycles accumulate. Listings that depend
    on them are re-evaluated; every change is audited. A writer with a region writes only vehicles
    of it, into it (403 `outside_your_region`, the whole batch refused, nothing stored).
    """
    session = db()
    vehicles = body["vehicles"]
    registry_scope.check_vehicles(session, current_person().scope, vehicles)
    unknown = registry.missing_fleets(session, {v["fleet_code"] for v in vehicles if v.get("fleet_code")})
    if unknown:
        raise Unprocessable(
            "fleet codes must be registered first (PUT /api/v1/registry/fleets)",
            fields={"vehicles": [f"unknown fleet_code {code}" for code in sorted(unknown)]},
        )
    today = cases.local_today(runtime().tz)
    ahead = sorted({v["valid_from"] for v in vehicles if v.get("valid_from") and v["valid_from"] > today})
    if ahead:
        raise Unprocessable("valid_from may not be after today (a version holds from a day that has come)",
                            fields={"vehicles": [f"valid_from {day.isoformat()} is after today" for day in ahead]})
    before = listings.previous_fleet_ids(session, [(v["plate"], v["plate_color"]) for v in vehicles])
    count, touched = registry.upsert_vehicles(session, vehicles, today=today, actor=current_person().actor)
    listings.refresh_registry_listings(session, touched, before, runtime().settings.policy)
    session.commit()
    return count
