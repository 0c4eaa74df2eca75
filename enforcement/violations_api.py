"""Violations API: the violations a reader's region holds, newest first."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.errors import NotFound
from core.identity import Role
from core.pagination import page, walk
from core.web import current_person, db, read_db, require_person, runtime
from enforcement import cases, corrections, exports
from enforcement.cases_api import READERS, export
from enforcement.models import Violation
from enforcement.violations import ViolationFilter, violations_query
from schemas.cases import CorrectionIn, CorrectionOut, ViolationOut, ViolationPage, ViolationQuery

blp = Blueprint("violations", __name__, url_prefix="/api/v1", description="Violations")


@blp.get("/violations")
@require_person(*READERS)
@blp.arguments(ViolationQuery, location="query")
@blp.response(200, ViolationPage)
def list_violations(query: dict[str, Any]) -> Any:
    """List violations, newest first (active ones unless `status` says otherwise)."""
    session = read_db()
    stmt = violations_query(ViolationFilter(
        scope=current_person().scope, plate=query["plate"], plate_color=query["plate_color"], region=query["region"],
        source=query["source"], status=None if query["status"] == "all" else query["status"],
        since=query["from_"], until=query["to"], tz=runtime().tz,
    ))
    if query["format"]:
        def context(rows: Any) -> dict[str, Any]:
            return {"plates": cases.vehicles_by_id(session, (v.vehicle_id for v in rows)), "tz": runtime().tz}
        pages = walk(session, stmt, Violation.detected_at, Violation.id, size=exports.PAGE_ROWS)
        return export(query["format"], "violations", exports.table(pages, exports.VIOLATION_COLUMNS, context),
                      session)
    rows, cursor = page(session, stmt, Violation.detected_at, Violation.id, limit=query["limit"],
                        cursor=query["cursor"])
    return {"items": cases.present_violations(session, rows), "next_cursor": cursor}


@blp.get("/violations/<int:violation_id>")
@require_person(*READERS)
@blp.response(200, ViolationOut)
def get_violation(violation_id: int) -> dict[str, Any]:
    """Read one violation with its evidence."""
    session = db()
    violation = session.get(Violation, violation_id)
    if violation is None or not cases.violation_visible(violation, current_person().scope):
        raise NotFound("no such violation", code="violation_not_found")
    return cases.present_violations(session, [violation])[0]


@blp.post("/violations/<int:violation_id>/correction")
@require_person(Role.ENV_OFFICER)
@blp.arguments(CorrectionIn)
@blp.response(201, CorrectionOut)
@blp.alt_response(404, description="violation_not_found")
@blp.alt_response(409, description="violation_withdrawn")
@blp.alt_response(422, description="validation_error, plate_unreadable, plate_ambiguous, same_vehicle")
def post_correction(body: dict[str, Any], violation_id: int) -> dict[str, Any]:
    """Move a violation to the vehicle a person read (env_officer): strikes, cases and listings of both follow."""
    session = db()
    person = current_person()
    done = corrections.correct_violation(
        session, violation_id, plate=body["plate"], plate_color=body["plate_color"], reason=body["reason"],
        actor=person.actor, scope=person.scope, policy=runtime().settings.policy,
    )
    session.commit()
    c = done.correction
    return {"id": c.id, "violation_id": c.violation_id, "from_vehicle": cases.plate_of(done.from_vehicle),
            "to_vehicle": cases.plate_of(done.to_vehicle), "reason": c.reason, "by": c.corrected_by,
            "at": c.corrected_at, "violation": cases.present_violations(session, [done.violation])[0]}
