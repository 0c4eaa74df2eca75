"""The review of a black-smoke snapshot by a person: the estimate proposes, a person decides.

A confirmation above the policy limit records a violation for the vehicle the plate
matches (a provisional vehicle for an unknown well-formed plate); each snapshot is reviewed
once. The review is allowed while the analysis is still running: the person has the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from core import audit
from core.db import utcnow
from core.errors import Conflict, Unprocessable
from core.settings import Policy
from enforcement import violations
from remote_sensing import snapshots
from remote_sensing.models import CONFIRMED, PENDING_REVIEW, RECEIVED, REJECTED, REVIEWED, Snapshot
from remote_sensing.processing import match_plate

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

    `plate` and `plate_color` are the officer's reading of the image: when given they
    replace the camera's read for matching the vehicle."""
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
        read = snapshot.payload["plate"]
        number, color = plate or read["number"], plate_color or read["color"]
        # A person has looked at the images: a readable plate is trusted enough for a
        # provisional vehicle.
        match = match_plate(session, number, color, True, snapshot.region)
        if match.vehicle is None:
            raise Unprocessable(f"plate {number!r} is not readable", code="plate_unreadable")
        vehicle = match.vehicle

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
            policy=policy, tz=tz, actor=reviewer.actor,
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
