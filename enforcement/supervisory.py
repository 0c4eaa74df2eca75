"""Supervisory tests: road and depot checks by officers; a failed one is a violation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, plates, regions
from core.db import insert_ignore, utcnow
from core.errors import Conflict, Unprocessable
from core.registry import Vehicle, lock_vehicles
from core.settings import Policy
from enforcement import violations
from enforcement.cases import Actor
from enforcement.models import SupervisoryTest, Violation


def vehicle_for(session: Session, plate: str, plate_color: str, region: str | None) -> Vehicle:
    """The registered or provisional vehicle; an unknown plate becomes a provisional one.

    Outside vehicles are a large share of the problem, so they are tracked like any other
    (DOMAIN.md section 2), placed in the region where they were tested.
    """
    insert_ignore(
        session, Vehicle.__table__,
        [{"plate": plate, "plate_color": plate_color, "plate_key": plates.confusion_key(plate), "registered": False,
          "region": region, "created_at": utcnow(), "updated_at": utcnow()}],
        ["plate", "plate_color"],
    )
    return session.scalars(select(Vehicle).where(Vehicle.plate == plate, Vehicle.plate_color == plate_color)).one()


def place_of_test(actor: Actor, region: str | None) -> str | None:
    """Where the test took place: the body's region, within the officer's own, else the
    officer's (None for an officer without one: then the vehicle's, see `record_test`)."""
    if region is None:
        return actor.scope
    if not regions.contains(actor.scope, region):
        raise Unprocessable("the test lies outside your region", fields={"region": ["is outside your region"]})
    return region


@dataclass(frozen=True)
class Recorded:
    test: SupervisoryTest
    violation: Violation | None
    replayed: bool


def record_test(
    session: Session, *, actor: Actor, policy: Policy, tz: ZoneInfo, plate: str, plate_color: str, kind: str,
    method: str, tested_at: datetime, passed: bool, results: dict[str, Any], location: str | None = None,
    region: str | None = None,
) -> Recorded:
    """Store the test; a failed one records a violation with source = the test's kind.

    The same test posted again (same vehicle, kind, method and `tested_at`, same content:
    a client's retry) is answered with the stored one and `replayed` true; the same key with
    different content is a 409.
    """
    where = place_of_test(actor, region)
    vehicle = vehicle_for(session, plate, plate_color, where)
    where = where or vehicle.region
    lock_vehicles(session, [vehicle.id])  # the replay check and the insert must not race
    stored = session.scalar(select(SupervisoryTest).where(
        SupervisoryTest.vehicle_id == vehicle.id, SupervisoryTest.kind == kind, SupervisoryTest.method == method,
        SupervisoryTest.tested_at == tested_at,
    ))
    if stored is not None:
        if (stored.passed, stored.results, stored.location, stored.region) != (passed, results, location, where):
            raise Conflict("a different test of this vehicle with the same kind, method and tested_at is recorded",
                           code="supervisory_test_conflict")
        violation = session.scalar(select(Violation).where(
            Violation.source == kind, Violation.source_ref == str(stored.id)))
        return Recorded(stored, violation, replayed=True)
    test = SupervisoryTest(
        vehicle_id=vehicle.id, kind=kind, method=method, tested_at=tested_at, results=results, passed=passed,
        location=location, region=where, recorded_by=actor.name,
    )
    session.add(test)
    session.flush()
    audit.append(
        session, actor=actor.name, action="supervisory_test.recorded", subject_type="supervisory_test",
        subject_id=test.id, data={"vehicle_id": vehicle.id, "kind": kind, "method": method, "passed": passed},
    )
    if passed:
        return Recorded(test, None, replayed=False)
    violation = violations.record_violation(
        session, vehicle=vehicle, source=kind, source_ref=str(test.id), detected_at=tested_at,
        details={"test_id": test.id, "method": method, "results": results, "location": location},
        region=test.region, policy=policy, tz=tz, actor=actor.name,
    )
    return Recorded(test, violation, replayed=False)
