"""A person moves a violation to the vehicle they read (API.md section 9, "Violations").

The violation's vehicle changes; a correction record keeps the vehicle it was on, who moved
it and why, and the audit trail has it. The old vehicle loses the violation as a withdrawal
would take it away (`withdrawals.detach`: the day's strike passes on or goes, a case left
without an active violation closes `withdrawn`, a penalty on it and listings it no longer
supports are flagged); the new vehicle's case opens or is joined and its strikes and
listings are evaluated as for a new violation.

A remote-sensing violation's measurements (the events of its run) leave the old vehicle's
timeline for good (`processing.set_aside`): a person decided what they ground, so no later
replay withdraws, reinstates or repeats the violation; the events keep their first verdicts
and stay its evidence; the old vehicle's later measurements are re-judged without them, as
after a late upload (docs/judgement.md, "Corrections").

The plate is a person's reading, matched exactly (`vehicle_read_by_person`): a malformed
plate, or one whose form contradicts its colour, is 422 `plate_unreadable`; an unregistered
plate that registered plates differ from only by OCR-confusable characters is 422
`plate_ambiguous`; any other unknown well-formed plate becomes a provisional vehicle, as a
reviewer's reading of a black-smoke image does (outside vehicles are tracked too).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core import audit
from core.db import utcnow
from core.errors import Conflict, NotFound, Unprocessable
from core.queue import enqueue_after_commit
from core.registry import Vehicle, facts_on, lock_vehicles
from core.settings import Policy
from enforcement import cases, listings, withdrawals
from enforcement.models import ACTIVE, Violation, ViolationCorrection
from remote_sensing import processing
from remote_sensing.ingest import JUDGE_JOB

CORRECTED = "violation_corrected"


@dataclass(frozen=True)
class Corrected:
    correction: ViolationCorrection
    violation: Violation
    from_vehicle: Vehicle
    to_vehicle: Vehicle


def correct_violation(
    session: Session, violation_id: int, *, plate: str, plate_color: str, reason: str, actor: str,
    scope: str | None, policy: Policy,
) -> Corrected:
    """Move the violation to the vehicle of (`plate`, `plate_color`); the caller commits, so a
    refusal (raised before any consequence is written) leaves everything as it was."""
    violation = session.get(Violation, violation_id)
    if violation is None or not cases.violation_visible(violation, scope):
        raise NotFound("no such violation", code="violation_not_found")
    if violation.status != ACTIVE:
        raise Conflict(f"violation {violation_id} is {violation.status}: only an active one can be moved",
                       code="violation_withdrawn")
    old = session.get(Vehicle, violation.vehicle_id)
    assert old is not None  # a foreign key
    new = processing.vehicle_read_by_person(session, plate, plate_color, violation.region or old.region or "")
    if new.id == old.id:
        raise Unprocessable(f"violation {violation_id} is already on {new.plate} ({new.plate_color})",
                            code="same_vehicle", fields={"plate": ["is the vehicle the violation is on"]})
    lock_vehicles(session, [old.id, new.id])
    session.refresh(violation)  # re-read under the lock: a judge may have withdrawn it meanwhile
    if violation.status != ACTIVE or violation.vehicle_id != old.id:
        raise Conflict(f"violation {violation_id} changed meanwhile", code="violation_changed")

    old_fleet_id = violation.fleet_id
    moved = (processing.set_aside(session, violation.details.get("events", []), old.id)
             if violation.source == "remote_sensing" else [])
    correction = ViolationCorrection(violation_id=violation.id, from_vehicle_id=old.id, to_vehicle_id=new.id,
                                     reason=reason, corrected_by=actor, corrected_at=utcnow())
    session.add(correction)
    # The facts at detection are the new vehicle's now.
    facts = facts_on(session, [(new, violation.detected_on)])[(new.id, violation.detected_on)]
    violation.vehicle_id, violation.vehicle_region = new.id, facts.region
    violation.fleet_id, violation.use_nature = facts.fleet_id, facts.use_nature
    session.flush()
    cause = withdrawals.Cause(CORRECTED, "penalty_on_corrected_violation", "case.violation_moved", actor)
    withdrawals.detach(session, violation, old.id, old_fleet_id, policy, cause)
    violation.case_id = cases.open_or_join(session, new, violation, actor=actor).id
    session.flush()
    listings.on_violations(session, [(violation, new)], policy)
    audit.append(
        session, actor=actor, action="violation.corrected", subject_type="violation", subject_id=violation.id,
        reason=reason, data={"correction_id": correction.id, "from_vehicle_id": old.id, "to_vehicle_id": new.id,
                             "case_id": violation.case_id, "events_moved": moved},
    )
    session.flush()
    if moved:
        enqueue_after_commit(session, JUDGE_JOB, job_id=f"judge-moved-{correction.id}", coalesce="judge")
    return Corrected(correction, violation, old, new)
