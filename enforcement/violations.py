"""Recording violations: one per source record, each opening or joining the vehicle's case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.db import insert_ignore, is_postgres, utcnow
from core.registry import Vehicle
from core.settings import Policy
from enforcement import cases, listings
from enforcement.models import Violation
from remote_sensing.processing import Judged


def lock_vehicle(session: Session, vehicle_id: int) -> None:
    """Serialise everything that counts or transitions for one vehicle."""
    if is_postgres(session):
        session.execute(select(Vehicle.id).where(Vehicle.id == vehicle_id).with_for_update())


def record_violation(
    session: Session,
    *,
    vehicle: Vehicle,
    source: str,
    source_ref: str,
    detected_at: datetime,
    details: dict[str, Any],
    policy: Policy,
    tz: ZoneInfo,
    actor: str,
) -> Violation | None:
    """Insert the violation unless this source record already made one; None when it did."""
    lock_vehicle(session, vehicle.id)
    inserted = insert_ignore(
        session, Violation.__table__,
        [{
            "vehicle_id": vehicle.id, "source": source, "source_ref": source_ref, "detected_at": detected_at,
            "detected_on": detected_at.astimezone(tz).date(), "region": vehicle.region, "details": details,
            "created_at": utcnow(),
        }],
        ["source", "source_ref"],
    )
    if not inserted:
        return None
    violation = session.scalars(
        select(Violation).where(Violation.source == source, Violation.source_ref == source_ref)
    ).one()
    case = cases.open_or_join(session, vehicle, violation, actor=actor)
    violation.case_id = case.id
    listings.on_violation(session, violation, vehicle, policy, tz)
    audit.append(
        session, actor=actor, action="violation.recorded", subject_type="violation", subject_id=violation.id,
        data={"vehicle_id": vehicle.id, "source": source, "source_ref": source_ref, "case_id": case.id},
    )
    session.flush()
    return violation


def record_remote_sensing(session: Session, judged: Sequence[Judged], policy: Policy, tz: ZoneInfo) -> list[Violation]:
    made = []
    for item in judged:
        violation = record_violation(
            session, vehicle=item.vehicle, source="remote_sensing", source_ref=str(item.event.id),
            detected_at=item.event.measured_at,
            details={"event_id": item.event.id, "pollutants": item.pollutants, "policy": item.event.policy_digest},
            policy=policy, tz=tz, actor="system:judge",
        )
        if violation is not None:
            item.event.violation_id = violation.id
            made.append(violation)
    return made
