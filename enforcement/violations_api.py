"""Violations API: the violations a reader's region holds, newest first."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import regions
from core.errors import NotFound
from core.pagination import page
from core.web import current_person, db, read_db, require_person, runtime
from enforcement import cases
from enforcement.cases_api import READERS
from enforcement.models import Violation
from enforcement.violations import ViolationFilter, violations_query
from schemas.cases import ViolationOut, ViolationPage, ViolationQuery

blp = Blueprint("violations", __name__, url_prefix="/api/v1", description="Violations")


@blp.get("/violations")
@require_person(*READERS)
@blp.arguments(ViolationQuery, location="query")
@blp.response(200, ViolationPage)
def list_violations(query: dict[str, Any]) -> dict[str, Any]:
    """List violations, newest first (active ones unless `status` says otherwise)."""
    session = read_db()
    stmt = violations_query(ViolationFilter(
        scope=current_person().scope, plate=query["plate"], plate_color=query["plate_color"], region=query["region"],
        source=query["source"], status=None if query["status"] == "all" else query["status"],
        since=query["from_"], until=query["to"], tz=runtime().tz,
    ))
    rows, cursor = page(session, stmt, Violation.detected_at, Violation.id, limit=query["limit"],
                        cursor=query["cursor"])
    vehicles = cases.vehicles_by_id(session, (v.vehicle_id for v in rows))
    return {"items": [cases.present_violation(v, vehicles[v.vehicle_id]) for v in rows], "next_cursor": cursor}


@blp.get("/violations/<int:violation_id>")
@require_person(*READERS)
@blp.response(200, ViolationOut)
def get_violation(violation_id: int) -> dict[str, Any]:
    """Read one violation with its evidence."""
    session = db()
    violation = session.get(Violation, violation_id)
    if violation is None or not regions.contains(current_person().scope, violation.region):
        raise NotFound("no such violation", code="violation_not_found")
    vehicle = cases.vehicles_by_id(session, [violation.vehicle_id])[violation.vehicle_id]
    return cases.present_violation(violation, vehicle)
