"""Recording violations: one per source record, each opening or joining the vehicle's case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core import audit
from core.db import insert_ignore, utcnow
from core.registry import Vehicle
from core.settings import Policy
from enforcement import cases, listings
from enforcement.cases import lock_vehicle
from enforcement.models import Violation
from remote_sensing.processing import Judged


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


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ViolationFilter:
    """Query filters; `since`/`until` are local calendar days of detection, both inclusive."""

    scope: str | None = None
    plate: str | None = None
    plate_color: str | None = None
    region: str | None = None
    source: str | None = None
    since: date | None = None
    until: date | None = None
    tz: ZoneInfo | None = None  # with dates, also bounds detected_at so the time index applies


def violations_query(f: ViolationFilter) -> Select[Any]:
    stmt = select(Violation).where(cases.in_region(Violation.region, f.scope))
    if f.region:
        stmt = stmt.where(cases.in_region(Violation.region, f.region))
    if f.plate or f.plate_color:
        stmt = stmt.join(Vehicle, Vehicle.id == Violation.vehicle_id)
        if f.plate:
            stmt = stmt.where(Vehicle.plate == f.plate)
        if f.plate_color:
            stmt = stmt.where(Vehicle.plate_color == f.plate_color)
    if f.source:
        stmt = stmt.where(Violation.source == f.source)
    # detected_on is the rule; the equivalent detected_at range lets the list walk its index.
    if f.since:
        stmt = stmt.where(Violation.detected_on >= f.since)
        if f.tz:
            stmt = stmt.where(Violation.detected_at >= datetime.combine(f.since, time(), f.tz))
    if f.until:
        stmt = stmt.where(Violation.detected_on <= f.until)
        if f.tz:
            stmt = stmt.where(Violation.detected_at < datetime.combine(f.until + timedelta(days=1), time(), f.tz))
    return stmt


def cycle_window(vehicle: Vehicle, today: date, policy: Policy) -> tuple[date, date]:
    """[start, end) of the vehicle's current inspection cycle, or the last N days up to today without one."""
    if vehicle.cycle_last_on and vehicle.cycle_next_due_on:
        return vehicle.cycle_last_on, vehicle.cycle_next_due_on
    return today - timedelta(days=policy.strike_window_days_without_cycle - 1), today + timedelta(days=1)


def cycle_violations(session: Session, vehicle: Vehicle, today: date, policy: Policy) -> int:
    start, end = cycle_window(vehicle, today, policy)
    return session.scalar(
        select(func.count()).select_from(Violation).where(
            Violation.vehicle_id == vehicle.id, Violation.detected_on >= start, Violation.detected_on < end,
        )
    ) or 0
