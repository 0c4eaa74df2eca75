"""Supervisory tests API: road and depot checks by officers."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.identity import Role
from core.registry import Vehicle
from core.web import current_person, db, require_person, runtime
from enforcement import supervisory
from enforcement.cases import Actor, plate_of, present_record
from enforcement.cases_api import no_future
from schemas.cases import SupervisoryTestIn, SupervisoryTestOut

blp = Blueprint("supervisory_tests", __name__, url_prefix="/api/v1", description="Supervisory tests")


@blp.post("/supervisory-tests")
@require_person(Role.ENV_OFFICER, Role.POLICE)
@blp.arguments(SupervisoryTestIn)
@blp.response(201, SupervisoryTestOut)
@blp.alt_response(200, schema=SupervisoryTestOut, description="the same test again (a retry): the stored one")
def post_test(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Record a road or depot check; a failed one creates a violation.

    The same test posted again (a retry) answers 200 with the stored one and makes no second
    violation.
    """
    no_future(body, "tested_at")
    session, rt = db(), runtime()
    recorded = supervisory.record_test(
        session, actor=Actor.of(current_person()), policy=rt.settings.policy, tz=rt.tz, **body,
    )
    session.commit()
    test, violation = recorded.test, recorded.violation
    vehicle = session.get(Vehicle, test.vehicle_id)
    answer = {
        **present_record(test), "vehicle": plate_of(vehicle),
        "violation_id": violation.id if violation else None, "case_id": violation.case_id if violation else None,
    }
    return answer, 200 if recorded.replayed else 201
