"""Vehicles validly measured, one row per local month, region where tested and vehicle
(rs_tested_months), kept at the verdict.

The distinct-vehicle figures of whole local months (the monthly quota and the diesel
coverage: enforcement.stats) read these rows, never the month's events: their cost follows
the fleet a month sees, not the number of its events, and a late upload counts in its month
when it is judged, retained or not. The judge adds a batch's rows in the transaction that
writes its first verdicts; a vehicle and region already counted in that month is skipped.
An event's validity, vehicle and station never change after its first verdict (a
correction moves the violation, not the plate as read), so the rows stay a function of the
events. Months are those of LANTIAN_TIMEZONE; `rebuild` writes them again after the zone
changes (docs/scaling.md: changing the zone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Select, cast, delete, func, insert, select, text, union
from sqlalchemy.orm import Session

from core.db import insert_ignore, is_postgres
from core.identity import Station
from core.months import month_start
from remote_sensing.models import PROCESSED, Event, TestedMonth, TestedVehicle

KEY = ("month", "region", "vehicle_id")


def rows(events: Iterable[Any], regions: Mapping[int, str], tz: ZoneInfo) -> list[dict[str, Any]]:
    """The tested-month rows of first verdicts (objects with `valid`, `vehicle_id`,
    `measured_at` and `station_id`), once each and sorted: two judges adding the same row
    wait on each other in one order, never in a cycle."""
    return _keyed(((e.measured_at, regions[e.station_id], e.vehicle_id)
                   for e in events if e.valid and e.vehicle_id is not None), tz)


def _keyed(tested: Iterable[tuple[datetime, str, int]], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Rows of (UTC time, region, vehicle) bucketed into `tz`'s months, once each, sorted."""
    months = {(month_start(at.astimezone(tz)), region, vehicle_id) for at, region, vehicle_id in tested}
    return [dict(zip(KEY, row, strict=True)) for row in sorted(months)]


def add(session: Session, tested: list[dict[str, Any]]) -> None:
    insert_ignore(session, TestedMonth.__table__, tested, KEY)


def _tested(month: Callable[[Any], Any]) -> list[Select[Any]]:
    """The (month of, region, vehicle) of the judged valid events and of the hours of tested
    vehicles retention kept, both in the station's current region."""
    return [select(month(Event.measured_at), Station.region, Event.vehicle_id)
            .join(Station, Station.id == Event.station_id)
            .where(Event.status == PROCESSED, Event.valid.is_(True), Event.vehicle_id.is_not(None)),
            select(month(TestedVehicle.hour), Station.region, TestedVehicle.vehicle_id)
            .join(Station, Station.id == TestedVehicle.station_id)]


def rebuild(session: Session, tz: ZoneInfo) -> int:
    """Write every row again in the months of `tz` (`_tested`); how many rows. One
    transaction, the caller's. On PostgreSQL the table is locked first: a judge's batch
    commits either before the rebuild reads (and is rebuilt) or after it (and adds its rows
    to the new ones), so judges already running in `tz` may keep running."""
    postgres = is_postgres(session)
    if postgres:
        session.execute(text(f"LOCK TABLE {TestedMonth.__tablename__} IN EXCLUSIVE MODE"))
    session.execute(delete(TestedMonth))
    if postgres:
        def local(at: Any) -> Any:  # a UTC timestamp's month in `tz`, server-side
            return cast(func.date_trunc("month", func.timezone(tz.key, func.timezone("UTC", at))), Date)

        session.execute(insert(TestedMonth).from_select(list(KEY), union(*_tested(local))))
        return session.scalar(select(func.count()).select_from(TestedMonth)) or 0
    # SQLite has no time zones; an embedded database is small enough to bucket here.
    tested = _keyed((row for q in _tested(lambda at: at) for row in session.execute(q)), tz)
    add(session, tested)
    return len(tested)
