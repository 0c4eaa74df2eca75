"""Withdrawing remote-sensing violations the history no longer supports, and what follows.

A withdrawal is a state with a reason and a cause, never a delete (DOMAIN.md section 7):
the violation stops being a strike (the day's strike passes to the vehicle's earliest
remaining active violation that day, or goes), counts for no fleet, and leaves default
listings. Its case records the withdrawal; a case left with no active violation closes
(`withdrawn`); a penalty already recorded on it is flagged for the police to revoke; a
listing whose evidence no longer meets its rule is flagged `review_required` for a person
(never silently deactivated). When a later replay supports the violation again it is
reinstated and joins a case, strikes and listings like a new one.

The judge's consequence step calls `withdraw` (before recording the batch's new
violations, so none of them counts a strike that is going) and `follow_through` (after, so
a case or listing the new ones support again is not closed or flagged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import audit
from core.db import utcnow
from core.registry import Vehicle
from core.settings import Policy
from enforcement import cases, listings
from enforcement.models import ACTIVE, WITHDRAWN, Case, Listing, Penalty, Strike, Violation

RULE_NO_LONGER_MET = "rule_no_longer_met"
PENALTY_ON_WITHDRAWN = "penalty_on_withdrawn_violation"
ACTOR = "system:judge"


@dataclass(frozen=True)
class Cause:
    """Why violations leave a vehicle's state, as its case and the audit trail name it."""

    reason: str
    penalty_flag: str  # the case's `review_required` reason for a penalty recorded on one
    case_action: str
    actor: str


WITHDRAWAL = Cause(RULE_NO_LONGER_MET, PENALTY_ON_WITHDRAWN, "case.violation_withdrawn", ACTOR)


@dataclass(frozen=True)
class Withdrawal:
    violation: Violation
    cause_event: int | None  # the late event that changed the rule's outcome
    cause_reset: int | None  # or the run reset (a verified repair) that did


def withdraw(session: Session, withdrawals: Sequence[Withdrawal]) -> None:
    """Mark each violation withdrawn and take its strike away. The caller holds the vehicle locks."""
    for w in withdrawals:
        v = w.violation
        v.status, v.withdrawn_reason, v.withdrawn_by_event, v.withdrawn_at = (
            WITHDRAWN, RULE_NO_LONGER_MET, w.cause_event, utcnow())
        audit.append(
            session, actor=ACTOR, action="violation.withdrawn", subject_type="violation", subject_id=v.id,
            reason=RULE_NO_LONGER_MET,
            data={"vehicle_id": v.vehicle_id, "source_ref": v.source_ref, "case_id": v.case_id,
                  "cause_event": w.cause_event, "cause_reset": w.cause_reset},
        )
    session.flush()
    _rederive_strikes(session, {(w.violation.vehicle_id, w.violation.detected_on) for w in withdrawals})


def _rederive_strikes(session: Session, days: set[tuple[int, date]]) -> None:
    """Each day's strike is held by the vehicle's earliest active violation of that day, if any."""
    for vehicle_id, day in sorted(days):
        holder = session.scalar(
            select(Violation.id).where(Violation.vehicle_id == vehicle_id, Violation.detected_on == day,
                                       Violation.status == ACTIVE)
            .order_by(Violation.detected_at, Violation.id).limit(1))
        strike = session.scalar(select(Strike).where(Strike.vehicle_id == vehicle_id, Strike.day == day))
        if strike is None:
            continue
        if holder is None:
            session.execute(delete(Strike).where(Strike.id == strike.id))
        elif strike.violation_id != holder:
            strike.violation_id = holder
    session.flush()


def reinstate(session: Session, violations: Sequence[Violation], cause_event: dict[int, int | None]) -> None:
    """A withdrawn violation the history supports again is active again (the caller then
    joins it to a case and counts it as a new one)."""
    for v in violations:
        v.status, v.withdrawn_reason, v.withdrawn_by_event, v.withdrawn_at = ACTIVE, None, None, None
        audit.append(
            session, actor=ACTOR, action="violation.reinstated", subject_type="violation", subject_id=v.id,
            data={"vehicle_id": v.vehicle_id, "source_ref": v.source_ref, "cause_event": cause_event.get(v.id)},
        )
    session.flush()


def follow_through(session: Session, withdrawals: Sequence[Withdrawal], policy: Policy) -> None:
    """The withdrawals' cases, penalties and listings, once the batch's new violations are in."""
    if not withdrawals:
        return
    by_case: dict[int, list[Violation]] = {}
    for w in withdrawals:
        if w.violation.case_id is not None:
            by_case.setdefault(w.violation.case_id, []).append(w.violation)
    for case_id in sorted(by_case):
        _follow_case(session, session.get(Case, case_id), by_case[case_id])
    _review_listings(session, [w.violation for w in withdrawals], policy)


def _follow_case(session: Session, case: Case, withdrawn: list[Violation], cause: Cause = WITHDRAWAL) -> None:
    flags = list(case.review_required or [])
    penalties = session.scalars(select(Penalty).where(Penalty.case_id == case.id, Penalty.waived.is_(False))).all()
    for v in withdrawn:
        audit.append(
            session, actor=cause.actor, action=cause.case_action, subject_type="case", subject_id=case.id,
            reason=cause.reason, data={"violation_id": v.id, "status": case.status},
        )
        if any(p.violation_ids is None or v.id in p.violation_ids for p in penalties):
            flag = {"reason": cause.penalty_flag, "violation_id": v.id}
            if flag not in flags:
                flags.append(flag)
    case.review_required = flags  # a new list: the JSON column sees the change
    left = session.scalar(select(func.count()).select_from(Violation).where(
        Violation.case_id == case.id, Violation.status == ACTIVE))
    if case.status in cases.OPEN_STATUSES and not left:
        before = case.status
        cases.close_case(case, reason=WITHDRAWN)
        audit.append(
            session, actor=cause.actor, action="case.closed", subject_type="case", subject_id=case.id,
            reason="no active violation left", data={"from": before, "to": "closed", "closed_reason": WITHDRAWN},
        )
    session.flush()


def _review_listings(session: Session, withdrawn: list[Violation], policy: Policy,
                     holders: Sequence[tuple[int, int | None]] = (), actor: str = ACTOR) -> None:
    """Follow the vehicles' strikes, then flag each active listing grounded on a withdrawn
    violation that its rule no longer supports. `holders` are the (vehicle, fleet) the
    violations counted for, when not their own any more (a correction)."""
    ids = {v.id for v in withdrawn}
    holders = holders or [(v.vehicle_id, v.fleet_id) for v in withdrawn]
    vehicles = list(session.scalars(select(Vehicle).where(Vehicle.id.in_({vid for vid, _ in holders}))))
    kept = listings.evaluate_vehicles(session, vehicles, policy)
    subjects = {("vehicle", v.id) for v in vehicles} | {("fleet", fid) for _, fid in holders if fid}
    entries = [e for kind, sid in sorted(subjects) for e in session.scalars(select(Listing).where(
        Listing.subject_type == kind, Listing.subject_id == sid, Listing.active.is_(True)))]
    for entry in entries:
        grounded = ids & set(entry.evidence)
        if entry.review_required or entry.id in kept or not grounded:
            continue
        if entry.basis != "rolling" and listings.still_met(session, entry, policy):
            continue  # another cycle's or year's entry that still holds
        listings.flag_for_review(session, entry, actor, grounded)
    session.flush()


def detach(session: Session, violation: Violation, vehicle_id: int, fleet_id: int | None, policy: Policy,
           cause: Cause) -> None:
    """Take an active violation that now counts for another vehicle (a person corrected its
    plate) out of vehicle `vehicle_id`'s state (with `fleet_id`, its fleet at detection),
    with a withdrawal's consequences: the day's strike, the case, its penalty and listings.
    The caller holds the vehicle lock and has moved the violation already; it leaves its case."""
    case = session.get(Case, violation.case_id) if violation.case_id is not None else None
    violation.case_id = None
    session.flush()
    _rederive_strikes(session, {(vehicle_id, violation.detected_on)})
    if case is not None and case.vehicle_id == vehicle_id:
        _follow_case(session, case, [violation], cause)
    _review_listings(session, [violation], policy, [(vehicle_id, fleet_id)], cause.actor)
