"""Vehicles validly measured, one row per local month, region where tested and vehicle
(rs_tested_months), kept at the verdict.

The distinct-vehicle figures of whole local months (the monthly quota and the diesel
coverage: enforcement.stats) read these rows, never the month's events: their cost follows
the fleet a month sees, not the number of its events, and a late upload counts in its month
when it is judged, retained or not. The judge adds a batch's rows in the transaction that
writes its first verdicts; a vehicle and region already counted in that month is skipped.
An event's validity, vehicle and station never change after its first verdict (a
correction moves the violation, not the plate as read), so the rows stay a function of the
events. Months are those of LANTIAN_TIMEZONE (docs/scaling.md: changing the zone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.db import insert_ignore
from core.months import month_start
from remote_sensing.models import TestedMonth

KEY = ("month", "region", "vehicle_id")


def rows(events: Iterable[Any], regions: Mapping[int, str], tz: ZoneInfo) -> list[dict[str, Any]]:
    """The tested-month rows of first verdicts (objects with `valid`, `vehicle_id`,
    `measured_at` and `station_id`), once each and sorted: two judges adding the same row
    wait on each other in one order, never in a cycle."""
    tested = {(month_start(e.measured_at.astimezone(tz)), regions[e.station_id], e.vehicle_id)
              for e in events if e.valid and e.vehicle_id is not None}
    return [dict(zip(KEY, row, strict=True)) for row in sorted(tested)]


def add(session: Session, tested: list[dict[str, Any]]) -> None:
    insert_ignore(session, TestedMonth.__table__, tested, KEY)
