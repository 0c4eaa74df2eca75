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
from core.db import insert_ignore_returning, utcnow
from core.identity import Station
from core.registry import Vehicle, cycle_pairs, facts_on, lock_fleets, lock_vehicles
from core.settings import Policy
from enforcement import cases, cycles, evidence, listings, withdrawals
from enforcement.models import ACTIVE, WITHDRAWN, Strike, Violation
from remote_sensing.models import Event
from remote_sensing.processing import Batch, Judged


@dataclass(frozen=True)
class NewViolation:
    """What a source found: `source_ref` names its record, so a retry makes no second violation;
    `region` is where it was detected (the station's, a test's), None: the vehicle's."""

    vehicle: Vehicle
    source: str
    source_ref: str
    detected_at: datetime
    details: dict[str, Any]
    region: str | None = None


def record_violations(
    session: Session, items: Sequence[NewViolation], *, policy: Policy, tz: ZoneInfo, actor: str
) -> list[Violation | None]:
    """Insert each violation unless its source record already made one (None in its place).

    Each new violation opens or joins its vehicle's case; then strikes are counted and the
    vehicles and fleets concerned are evaluated once for the whole set, in a fixed number
    of statements however many violations a judge's batch brings.
    """
    if not items:
        return []
    lock_vehicles(session, {item.vehicle.id for item in items})
    # The registry as it stood on the day of detection (its versions), not as it stands now.
    facts = facts_on(session, ((item.vehicle, item.detected_at.astimezone(tz).date()) for item in items))
    at = [facts[(item.vehicle.id, item.detected_at.astimezone(tz).date())] for item in items]
    lock_fleets(session, (f.fleet_id for f in at))
    inserted = insert_ignore_returning(
        session, Violation.__table__,
        [{
            "vehicle_id": item.vehicle.id, "source": item.source, "source_ref": item.source_ref,
            "detected_at": item.detected_at, "detected_on": item.detected_at.astimezone(tz).date(),
            "region": item.region or f.region, "details": item.details, "created_at": utcnow(),
            "vehicle_region": f.region, "fleet_id": f.fleet_id, "use_nature": f.use_nature,
        } for item, f in zip(items, at, strict=True)],
        ["source", "source_ref"], [Violation.id, Violation.source, Violation.source_ref],
    )
    if not inserted:
        return [None] * len(items)
    ids = {(source, ref): pk for pk, source, ref in inserted}
    loaded = {v.id: v for v in session.scalars(select(Violation).where(Violation.id.in_(ids.values())))}
    made: list[Violation | None] = []
    for item in items:
        pk = ids.pop((item.source, item.source_ref), None)  # a key given twice is made once
        made.append(loaded[pk] if pk is not None else None)

    new = [(violation, item.vehicle) for violation, item in zip(made, items, strict=True) if violation is not None]
    _join_cases_and_list(session, new, policy, actor=actor)
    for violation, vehicle in new:
        audit.append(
            session, actor=actor, action="violation.recorded", subject_type="violation", subject_id=violation.id,
            data={"vehicle_id": vehicle.id, "source": violation.source, "source_ref": violation.source_ref,
                  "case_id": violation.case_id},
        )
    session.flush()
    return made


def _join_cases_and_list(session: Session, made: Sequence[tuple[Violation, Vehicle]], policy: Policy, *,
                         actor: str) -> None:
    """Each (new or reinstated) violation opens or joins its vehicle's case; then strikes and listings."""
    if not made:
        return
    index = cases.case_index(session, {vehicle.id for _, vehicle in made}, min(v.detected_at for v, _ in made))
    for violation, vehicle in made:
        cases.open_or_join(session, vehicle, violation, actor=actor, index=index)
    listings.on_violations(session, made, policy)


def record_violation(
    session: Session,
    *,
    vehicle: Vehicle,
    source: str,
    source_ref: str,
    detected_at: datetime,
    details: dict[str, Any],
    region: str | None = None,
    policy: Policy,
    tz: ZoneInfo,
    actor: str,
) -> Violation | None:
    """One violation (a supervisory test, a confirmed snapshot); None when its record already made one."""
    item = NewViolation(vehicle, source, source_ref, detected_at, details, region)
    made = record_violations(session, [item], policy=policy, tz=tz, actor=actor)[0]
    if made is not None:
        evidence.keep(session, [made])  # its record (the test, the reviewed snapshot) is stored
    return made


def record_remote_sensing(session: Session, batch: Batch, policy: Policy, tz: ZoneInfo) -> list[Violation]:
    """The consequences of a judge's batch: violations its runs now ground (new, or a
    withdrawn one reinstated), and withdrawals of those the history no longer supports.

    One exceedance grounds at most one violation: each is keyed by its event's id. A first
    verdict's event gets the violation's id; a revision lists it in `violation_ids`. What it
    returns keeps its evidence once the batch's verdicts are saved (`evidence.keep`).
    """
    refs = {str(r.event_id) for r in batch.revisions} | {str(j.event_id) for j in batch.judged}
    stored = _remote_sensing_by_ref(session, refs)
    ending = [r for r in batch.withdrawals() if str(r.event_id) in stored and stored[str(r.event_id)].status == ACTIVE]
    gone = [withdrawals.Withdrawal(stored[str(r.event_id)], r.cause_event, r.cause_reset) for r in ending]
    withdrawals.withdraw(session, gone)
    for r in ending:
        r.withdrawn = [stored[str(r.event_id)].id]

    again = [(stored[str(j.event_id)], j) for j in batch.judged
             if str(j.event_id) in stored and stored[str(j.event_id)].status == WITHDRAWN]
    withdrawals.reinstate(session, [v for v, _ in again],
                          {v.id: j.revision.cause_event if j.revision else None for v, j in again})
    for violation, item in again:
        violation.details = _details(item, batch.policy_digest)
    _join_cases_and_list(session, [(v, j.vehicle) for v, j in again], policy, actor="system:judge")

    fresh = [j for j in batch.judged if str(j.event_id) not in stored]
    where = _measured_in(session, {(j.event_id, j.measured_at) for j in fresh})
    made = record_violations(
        session,
        [NewViolation(j.vehicle, "remote_sensing", str(j.event_id), j.measured_at, _details(j, batch.policy_digest),
                      where[j.event_id])
         for j in fresh],
        policy=policy, tz=tz, actor="system:judge",
    )
    grounding = {str(j.event_id): v for j, v in zip(fresh, made, strict=True) if v is not None}
    grounding |= {ref: v for ref, v in stored.items() if v.status == ACTIVE}
    for j in batch.judged:
        violation = grounding.get(str(j.event_id))
        if violation is not None and j.revision is None:
            batch.events[j.event_id].violation_id = violation.id
    for r in batch.revisions:
        if r.judged and str(r.event_id) in grounding:
            r.violation_ids = [grounding[str(r.event_id)].id]
    withdrawals.follow_through(session, gone, policy)
    return [v for v in made if v is not None] + [v for v, _ in again]


def _details(judged: Judged, policy_digest: str) -> dict[str, Any]:
    """What grounds the violation: the judged run's events in measurement order, its pollutants, the policy."""
    return {"event_id": judged.event_id, "events": judged.events, "pollutants": judged.pollutants,
            "policy": policy_digest}


def _measured_in(session: Session, events: set[tuple[int, datetime]]) -> dict[int, str]:
    """The region of each event's station (events as (id, measured_at)): a remote-sensing
    violation is detected where the exceedance that completed its run was measured. The
    times name the events' partitions; by id alone the planner scanned a whole month."""
    if not events:
        return {}
    ids, times = sorted({pk for pk, _ in events}), sorted({at for _, at in events})
    return dict(session.execute(select(Event.id, Station.region).join(Station, Station.id == Event.station_id)
                                .where(Event.id.in_(ids), Event.measured_at.in_(times))).all())


def _remote_sensing_by_ref(session: Session, refs: set[str]) -> dict[str, Violation]:
    if not refs:
        return {}
    query = select(Violation).where(Violation.source == "remote_sensing", Violation.source_ref.in_(sorted(refs)))
    return {v.source_ref: v for v in session.scalars(query)}


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ViolationFilter:
    """Query filters; `since`/`until` are local calendar days of detection, both inclusive."""

    scope: str | None = None
    plate: str | None = None
    plate_color: str | None = None
    region: str | None = None
    source: str | None = None
    status: str | None = ACTIVE  # None: active and withdrawn alike
    since: date | None = None
    until: date | None = None
    tz: ZoneInfo | None = None  # with dates, also bounds detected_at so the time index applies


def violations_query(f: ViolationFilter) -> Select[Any]:
    stmt = select(Violation).where(cases.violation_in_region(f.scope))
    if f.region:  # the same rule as the scope: detected there or registered there
        stmt = stmt.where(cases.violation_in_region(f.region))
    if f.plate or f.plate_color:
        stmt = stmt.join(Vehicle, Vehicle.id == Violation.vehicle_id)
        if f.plate:
            stmt = stmt.where(Vehicle.plate == f.plate)
        if f.plate_color:
            stmt = stmt.where(Vehicle.plate_color == f.plate_color)
    if f.source:
        stmt = stmt.where(Violation.source == f.source)
    if f.status:
        stmt = stmt.where(Violation.status == f.status)
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


def cycle_window(session: Session, vehicle: Vehicle, today: date, policy: Policy) -> cycles.Window:
    """The vehicle's current inspection cycle (an open one when overdue), or the last N days up
    to today without any cycle on record."""
    pairs = cycle_pairs(session, vehicle.id)
    window = cycles.window_of(today, pairs)
    if window is None:
        start = today - timedelta(days=policy.strike_window_days_without_cycle - 1)
        return cycles.Window(start, today + timedelta(days=1))
    return window


def cycle_violations(session: Session, vehicle: Vehicle, today: date, policy: Policy) -> int:
    """Strikes in the current cycle (DOMAIN.md section 7, "Counting for the plans' targets")."""
    window = cycle_window(session, vehicle, today, policy)
    query = select(func.count()).select_from(Strike).where(Strike.vehicle_id == vehicle.id, Strike.day >= window.start)
    if window.end is not None:
        query = query.where(Strike.day < window.end)
    return session.scalar(query) or 0
