"""The I/M case of a vehicle: at most one open at a time."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.registry import Vehicle
from enforcement.models import Case, Violation

OPEN_STATUSES = ("open", "notified", "repaired")


def open_case_of(session: Session, vehicle_id: int) -> Case | None:
    return session.scalar(select(Case).where(Case.vehicle_id == vehicle_id, Case.status != "closed"))


def open_or_join(session: Session, vehicle: Vehicle, violation: Violation, *, actor: str) -> Case:
    """The caller holds the vehicle lock, so the check-then-insert cannot race."""
    case = open_case_of(session, vehicle.id)
    if case is not None:
        return case
    case = Case(vehicle_id=vehicle.id, status="open", region=vehicle.region, opened_at=violation.detected_at)
    session.add(case)
    session.flush()
    audit.append(
        session, actor=actor, action="case.opened", subject_type="case", subject_id=case.id,
        data={"vehicle_id": vehicle.id, "violation_id": violation.id, "status": "open"},
    )
    return case
