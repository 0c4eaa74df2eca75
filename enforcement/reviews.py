"""The review of a black-smoke snapshot by a person: the estimate proposes, a person decides.

A confirmation above the policy limit records a violation for the vehicle the plate
matches (a provisional vehicle for an unknown well-formed plate), or the plate the person
read on the image; each snapshot is reviewed once. The review is allowed while the analysis
is still running: the person has the images.

A snapshot captured outside the station's calibration window or while it was suspended
cannot be confirmed (422 `station_uncalibrated` / `station_suspended`): refusing at the
review, rather than marking it at analysis, keeps the check on the capture time whatever
changed since, and the person can still reject it. Smoke on a vehicle registered as
electric is refused (422 `no_tailpipe`) and listed as a suspected cloned plate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit, pagination
from core.db import insert_ignore, utcnow
from core.errors import Conflict, Unprocessable
from core.registry import Vehicle
from core.settings import Policy
from enforcement import violations
from enforcement.cases import in_region
from enforcement.models import SuspectedClone
from remote_sensing import snapshots
from remote_sensing.models import CONFIRMED, PENDING_REVIEW, RECEIVED, REJECTED, REVIEWED, Snapshot
from remote_sensing.processing import match_plate, station_windows, vehicle_read_by_person
from remote_sensing.validity import ELECTRIC

CONFIRM, REJECT = "confirm", "reject"


@dataclass(frozen=True)
class Reviewer:
    actor: str  # "user:<username>", as the audit trail names people
    scope: str | None  # region the person is limited to


def suggested_level(snapshot: Snapshot, policy: Policy) -> int:
    """The level a confirm form starts at: the estimate, but at least the lowest that counts."""
    return max(snapshot.estimated_level or 0, policy.black_smoke_ringelmann_limit + 1)


def review(
    session: Session, snapshot_id: int, *, decision: str, ringelmann: int | None, note: str | None,
    reviewer: Reviewer, policy: Policy, tz: ZoneInfo, plate: str | None = None, plate_color: str | None = None,
) -> Snapshot:
    """Record the decision (and on confirm the violation) and commit.

    `plate` and `plate_color` are the person's reading of the image; either one replaces that
    part of the camera's reading, and one of them is needed when the camera's reading is
    unreadable or ambiguous.
    """
    snapshot = snapshots.get(session, snapshot_id, reviewer.scope)
    if snapshot.status in REVIEWED:
        raise Conflict(f"snapshot {snapshot_id} was already {snapshot.status}", code="already_reviewed")
    vehicle = None
    if decision == CONFIRM:
        limit = policy.black_smoke_ringelmann_limit
        if ringelmann is None or ringelmann <= limit:
            raise Unprocessable(
                "only a level above the limit can be confirmed; reject the snapshot instead",
                fields={"ringelmann": [f"must be above the limit {limit} to confirm"]},
            )
        _station_was_valid(session, snapshot, tz)
        vehicle = _reviewed_vehicle(session, snapshot, plate, plate_color)
        if vehicle.fuel_type == ELECTRIC:
            _suspect_clone(session, snapshot, vehicle, ringelmann, note, reviewer)
            raise Unprocessable(
                f"{vehicle.plate} is registered as an electric vehicle, which has no tailpipe: a misread or a "
                "cloned plate; the snapshot is listed as a suspected cloned plate and stays pending",
                code="no_tailpipe",
            )

    # Guarded by the status, so two people reviewing at once make one review.
    reviewed = session.execute(
        update(Snapshot)
        .where(Snapshot.id == snapshot_id, Snapshot.status.in_((RECEIVED, PENDING_REVIEW)))
        .values(
            status=CONFIRMED if decision == CONFIRM else REJECTED, reviewed_at=utcnow(),
            reviewed_by=reviewer.actor, reviewed_level=ringelmann if decision == CONFIRM else None,
            review_note=note, vehicle_id=vehicle.id if vehicle is not None else None,
        )
        .execution_options(synchronize_session=False)
    )
    if reviewed.rowcount != 1:
        session.rollback()
        raise Conflict(f"snapshot {snapshot_id} was reviewed meanwhile", code="already_reviewed")
    session.refresh(snapshot)

    if vehicle is not None:
        violation = violations.record_violation(
            session, vehicle=vehicle, source="black_smoke", source_ref=str(snapshot.id),
            detected_at=snapshot.captured_at,
            details={"snapshot_id": snapshot.id, "ringelmann": ringelmann, "estimated": snapshot.estimated_level,
                     "camera": snapshot.camera_ringelmann, "limit": policy.black_smoke_ringelmann_limit},
            region=snapshot.region, policy=policy, tz=tz, actor=reviewer.actor,
        )
        # The status guard above makes this the first review, so the violation is new.
        assert violation is not None
        snapshot.violation_id = violation.id
    audit.append(
        session, actor=reviewer.actor, action=f"snapshot.{snapshot.status}", subject_type="snapshot",
        subject_id=snapshot.id, reason=note,
        data={"ringelmann": ringelmann, "estimated": snapshot.estimated_level, "violation_id": snapshot.violation_id,
              "vehicle_id": snapshot.vehicle_id},
    )
    session.commit()
    return snapshot


def _station_was_valid(session: Session, snapshot: Snapshot, tz: ZoneInfo) -> None:
    """A camera outside its calibration window or inside a suspension proves nothing."""
    station = station_windows(session, {snapshot.station_id})[snapshot.station_id]
    if not station.calibrated(snapshot.captured_at, tz):
        raise Unprocessable("the snapshot was captured outside the station's calibration window",
                            code="station_uncalibrated")
    if station.suspended(snapshot.captured_at):
        raise Unprocessable("the snapshot was captured while the station was suspended", code="station_suspended")


def _reviewed_vehicle(session: Session, snapshot: Snapshot, plate: str | None, plate_color: str | None) -> Vehicle:
    """The vehicle of the person's reading when they gave one, else of the camera's reading."""
    read = snapshot.payload["plate"]
    if plate or plate_color:
        return vehicle_read_by_person(session, plate or read["number"], plate_color or read["color"], snapshot.region)
    # A person has looked at the images: a readable plate is trusted enough for a
    # provisional vehicle.
    match = match_plate(session, read["number"], read["color"], True, snapshot.region)
    if match.vehicle is None:
        why = "ambiguous" if match.ambiguous else "unreadable"
        raise Unprocessable(
            f"the camera's plate {read['number']!r} is {why}: give the plate you read on the image",
            code=f"plate_{why}",
            fields={"plate": [f"is required: the read plate is {why}"],
                    "plate_color": [f"is required: the read plate is {why}"]},
        )
    return match.vehicle


def _suspect_clone(
    session: Session, snapshot: Snapshot, vehicle: Vehicle, ringelmann: int, note: str | None, reviewer: Reviewer,
) -> None:
    """List the snapshot for the police (once) and commit: the refusal keeps only this."""
    inserted = insert_ignore(session, SuspectedClone.__table__, [{
        "snapshot_id": snapshot.id, "vehicle_id": vehicle.id, "region": snapshot.region,
        "captured_at": snapshot.captured_at, "ringelmann": ringelmann, "note": note,
        "reported_by": reviewer.actor, "reported_at": utcnow(),
    }], ["snapshot_id"])
    if inserted:
        audit.append(session, actor=reviewer.actor, action="snapshot.suspected_clone", subject_type="snapshot",
                     subject_id=snapshot.id, reason=note, data={"vehicle_id": vehicle.id, "ringelmann": ringelmann})
    session.commit()


def suspected_clones(
    session: Session, *, scope: str | None, region: str | None, limit: int, cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Suspected cloned plates seen within `scope` (and `region`), newest report first."""
    where = in_region(SuspectedClone.region, scope), in_region(SuspectedClone.region, region)
    stmt = select(SuspectedClone).where(*where)
    rows, next_cursor = pagination.page(session, stmt, SuspectedClone.reported_at, SuspectedClone.id,
                                        limit=limit, cursor=cursor)
    plates = {v.id: v for v in session.scalars(select(Vehicle).where(Vehicle.id.in_({r.vehicle_id for r in rows})))}
    return [
        {"id": r.id, "snapshot_id": r.snapshot_id,
         "vehicle": {"plate": plates[r.vehicle_id].plate, "plate_color": plates[r.vehicle_id].plate_color},
         "region": r.region, "captured_at": r.captured_at, "ringelmann": r.ringelmann, "note": r.note,
         "reported_by": r.reported_by, "reported_at": r.reported_at}
        for r in rows
    ], next_cursor
