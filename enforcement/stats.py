"""Monthly supervision figures a bureau reports against its action plan.

The plans set quotas in these terms: supervisory tests by source, the remote-sensing
exceedance rate, and diesel vehicles tested against the region's diesel fleet ("监督抽测
柴油车数量不低于当地柴油车保有量的80%").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from core.identity import Station
from core.registry import Vehicle
from enforcement.cases import in_region
from enforcement.models import SupervisoryTest, Violation
from remote_sensing.models import PROCESSED, Event, Snapshot


@dataclass(frozen=True)
class Month:
    first: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The month as an instant range [start, end) in the local time zone."""
        nxt = date(self.first.year + self.first.month // 12, self.first.month % 12 + 1, 1)
        return datetime.combine(self.first, time(), tz), datetime.combine(nxt, time(), tz)


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def supervision(session: Session, month: Month, region: str | None, scope: str | None, tz: ZoneInfo) -> dict[str, Any]:
    start, end = month.bounds(tz)

    def scoped(column: Any) -> list[Any]:
        return [in_region(column, scope), in_region(column, region)]

    events = (
        select(Event.valid, Event.verdict, func.count())
        .join(Station, Station.id == Event.station_id)
        .where(Event.status == PROCESSED, Event.measured_at >= start, Event.measured_at < end, *scoped(Station.region))
        .group_by(Event.valid, Event.verdict)
    )
    counts = {(valid, verdict): n for valid, verdict, n in session.execute(events)}
    valid = sum(n for (ok, _), n in counts.items() if ok)
    judged = counts.get((True, "pass"), 0) + counts.get((True, "exceed"), 0)
    exceeded = counts.get((True, "exceed"), 0)

    tests = dict(session.execute(
        select(SupervisoryTest.kind, func.count())
        .where(SupervisoryTest.tested_at >= start, SupervisoryTest.tested_at < end, *scoped(SupervisoryTest.region))
        .group_by(SupervisoryTest.kind)
    ).all())
    snapshots = session.scalar(
        select(func.count()).select_from(Snapshot)
        .where(Snapshot.captured_at >= start, Snapshot.captured_at < end, *scoped(Snapshot.region))
    ) or 0
    violations = dict(session.execute(
        select(Violation.source, func.count())
        .where(Violation.detected_at >= start, Violation.detected_at < end, *scoped(Violation.region))
        .group_by(Violation.source)
    ).all())

    diesel = select(Vehicle.id).where(Vehicle.fuel_type == "diesel", Vehicle.registered.is_(True),
                                      *scoped(Vehicle.region))
    tested = union(
        select(Event.vehicle_id.label("vid")).where(Event.valid.is_(True), Event.measured_at >= start,
                                                    Event.measured_at < end, Event.vehicle_id.in_(diesel)),
        select(SupervisoryTest.vehicle_id).where(SupervisoryTest.tested_at >= start, SupervisoryTest.tested_at < end,
                                                 SupervisoryTest.vehicle_id.in_(diesel)),
        select(Snapshot.vehicle_id).where(Snapshot.captured_at >= start, Snapshot.captured_at < end,
                                          Snapshot.vehicle_id.in_(diesel)),
    ).subquery()
    fleet = session.scalar(select(func.count()).select_from(diesel.subquery())) or 0
    diesel_tested = session.scalar(select(func.count()).select_from(tested)) or 0

    return {
        "region": region,
        "month": month.first.strftime("%Y-%m"),
        "tests_by_source": {
            "remote_sensing": valid,
            "black_smoke": snapshots,
            "road_check": tests.get("road_check", 0),
            "depot_check": tests.get("depot_check", 0),
        },
        "remote_sensing": {
            "events": sum(counts.values()),
            "valid": valid,
            "judged": judged,
            "exceeded": exceeded,
            "exceedance_rate": ratio(exceeded, judged),
        },
        "violations_by_source": violations,
        "diesel": {"vehicles_tested": diesel_tested, "registered": fleet, "coverage": ratio(diesel_tested, fleet)},
    }
