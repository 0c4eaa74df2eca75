"""Bulk registry upserts from the vehicle administration (admin, transport bureau)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import audit, registry
from core.errors import Unprocessable
from core.identity import Role
from core.web import current_person, db, require_person
from schemas.registry import FleetsIn, UpsertOut, VehiclesIn

blp = Blueprint("registry", __name__, url_prefix="/api/v1/registry", description="Vehicle and fleet registry")


@blp.put("/fleets")
@require_person(Role.TRANSPORT)
@blp.arguments(FleetsIn)
@blp.response(200, UpsertOut)
def put_fleets(body: dict[str, Any]) -> registry.UpsertCount:
    session = db()
    count = registry.upsert_fleets(session, body["fleets"])
    audit.append(session, actor=current_person().actor, action="registry.fleets_upserted", subject_type="registry",
                 subject_id="fleets", data={"codes": [f["code"] for f in body["fleets"]][:50], "count": len(body["fleets"])})
    session.commit()
    return count


@blp.put("/vehicles")
@require_person(Role.TRANSPORT)
@blp.arguments(VehiclesIn)
@blp.response(200, UpsertOut)
def put_vehicles(body: dict[str, Any]) -> registry.UpsertCount:
    session = db()
    vehicles = body["vehicles"]
    unknown = registry.missing_fleets(session, {v["fleet_code"] for v in vehicles if v.get("fleet_code")})
    if unknown:
        raise Unprocessable(
            "fleet codes must be registered first (PUT /api/v1/registry/fleets)",
            fields={"vehicles": [f"unknown fleet_code {code}" for code in sorted(unknown)]},
        )
    count, _ = registry.upsert_vehicles(session, vehicles)
    session.commit()
    return count
