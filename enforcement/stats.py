"""Supervision figures a bureau reports against its action plan, for the stats API and the
dashboard (both serialise what these functions answer).

The plans set targets in these terms: supervisory tests by source, distinct vehicles tested
each month ("每月抽测数量不得少于60辆"), diesel vehicles tested in the heating season against
the local diesel fleet ("不低于当地柴油车保有量的80%"), the remote-sensing exceedance rate and
stations whose measurements are valid. Quotas and coverage count **distinct vehicles**, and
only valid measurements, confirmed black-smoke snapshots and completed supervisory tests
count (DOMAIN.md section 7). A vehicle counts in the region where it was tested (the
station's or the test's), diesel coverage in the region where it is registered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from core.identity import Station
from core.registry import Vehicle
from core.settings import Policy
from enforcement.cases import cases_query, in_region, overdue_clause, violation_in_region
from enforcement.models import ACTIVE, Case, Listing, SupervisoryTest, Violation
from enforcement.targets import Period, at_least, heating_season, month_of, ratio, share_at_least, whole_months
from remote_sensing import counts, retention
from remote_sensing.models import CONFIRMED, PROCESSED, Event, EventCount, Snapshot, TestedMonth, TestedVehicle

TOP_REASONS = 3  # invalid reasons shown per station


@dataclass(frozen=True)
class Scope:
    """What one request may count: the person's region and the region asked for."""

    scope: str | None
    region: str | None

    def where(self, column: Any) -> list[Any]:
        return [in_region(column, self.scope), in_region(column, self.region)]


def _live(start: datetime, end: datetime, mark: datetime | None) -> tuple[datetime, datetime] | None:
    """The part of [start, end) after the retention mark: read from the events."""
    start = max(start, mark) if mark else start
    return (start, end) if start < end else None


def _retained(start: datetime, end: datetime, mark: datetime | None) -> tuple[datetime, datetime] | None:
    """The part of [start, end) before the retention mark: read from the counts."""
    end = min(end, mark) if mark else start
    return (start, end) if start < end else None


def _counted(
    session: Session, period: Period, tz: ZoneInfo, where: Scope, group: tuple[str, ...],
    *conditions: Callable[[EventCount], Any],
) -> Counter[tuple[Any, ...]]:
    """The judged measurements of the period counted by the `group` columns, from the counts
    the judge keeps (remote_sensing.counts). Each of `conditions` answers a filter of them."""
    start, end = period.bounds(tz)
    columns = [getattr(EventCount, name) for name in group]
    out: Counter[tuple[Any, ...]] = Counter()
    for *key, count in session.execute(
        select(*columns, func.sum(EventCount.n)).join(Station, Station.id == EventCount.station_id)
        .where(EventCount.hour >= start, EventCount.hour < end, *where.where(Station.region),
               *(condition(EventCount) for condition in conditions))
        .group_by(*columns)
    ):
        out[tuple(counts.hashable(k) for k in key)] += count
    return out


def _measured(period: Period, tz: ZoneInfo, mark: datetime | None) -> list[Any]:
    """(vehicle_id, region where tested) of the vehicles validly measured in a period that is
    not whole months: from the events, and before the retention mark from what it kept."""
    start, end = period.bounds(tz)
    measured = []
    if live := _live(start, end, mark):
        measured.append(
            select(Event.vehicle_id.label("vehicle_id"), Station.region.label("region"))
            .join(Station, Station.id == Event.station_id)
            .where(Event.status == PROCESSED, Event.valid.is_(True), Event.vehicle_id.is_not(None),
                   Event.measured_at >= live[0], Event.measured_at < live[1]))
    if kept := _retained(start, end, mark):
        measured.append(
            select(TestedVehicle.vehicle_id, Station.region).join(Station, Station.id == TestedVehicle.station_id)
            .where(TestedVehicle.hour >= kept[0], TestedVehicle.hour < kept[1]))
    return measured


def _tested(period: Period, tz: ZoneInfo, mark: datetime | None) -> list[Any]:
    """Selects of (vehicle_id, region where tested) that together name every vehicle tested
    in the period. Whole months of measurements are read from the tested months the judge
    keeps (remote_sensing.tested), the rest of the period from the events."""
    start, end = period.bounds(tz)
    months, parts = whole_months(period)
    measured = [select(TestedMonth.vehicle_id, TestedMonth.region)
                .where(TestedMonth.month >= months[0], TestedMonth.month <= months[-1])] if months else []
    for part in parts:
        measured.extend(_measured(part, tz, mark))
    return [
        *measured,
        select(SupervisoryTest.vehicle_id, SupervisoryTest.region)
        .where(SupervisoryTest.tested_at >= start, SupervisoryTest.tested_at < end),
        select(Snapshot.vehicle_id, Snapshot.region)
        .where(Snapshot.status == CONFIRMED, Snapshot.vehicle_id.is_not(None), Snapshot.captured_at >= start,
               Snapshot.captured_at < end),
    ]


def vehicles_tested(session: Session, period: Period, where: Scope, tz: ZoneInfo) -> tuple[int, dict[str, int]]:
    """Distinct vehicles tested in the period: in all of the scope, and per region of testing."""
    tested = union(*_tested(period, tz, retention.retained_before(session))).subquery()
    total = session.scalar(select(func.count(func.distinct(tested.c.vehicle_id))).where(*where.where(tested.c.region)))
    per_region = session.execute(
        select(tested.c.region, func.count(func.distinct(tested.c.vehicle_id)))
        .where(*where.where(tested.c.region), tested.c.region.is_not(None))
        .group_by(tested.c.region)
    ).all()
    return total or 0, {code: n for code, n in per_region}


def diesel_coverage(session: Session, period: Period, where: Scope, tz: ZoneInfo) -> tuple[tuple[int, int],
                                                                                           dict[str, tuple[int, int]]]:
    """(diesel vehicles tested, registered diesel fleet): in all of the scope, and per region of registration."""
    diesel = Vehicle.fuel_type == "diesel", Vehicle.registered.is_(True), *where.where(Vehicle.region)
    # The ids alone: PostgreSQL estimates a one-column union from the tables' statistics; with
    # the region beside it, a default of 200 rows planned the fleet's join as a primary-key
    # probe per tested vehicle (0.7 s for a season at 10 M events, 0.17 s hashed).
    tested_ids = union(*(s.with_only_columns(s.selected_columns[0])
                         for s in _tested(period, tz, retention.retained_before(session)))).scalar_subquery()
    fleet = dict(session.execute(select(Vehicle.region, func.count()).where(*diesel).group_by(Vehicle.region)).all())
    covered = dict(session.execute(
        select(Vehicle.region, func.count()).where(*diesel, Vehicle.id.in_(tested_ids)).group_by(Vehicle.region)
    ).all())
    per_region = {code: (covered.get(code, 0), n) for code, n in fleet.items() if code is not None}
    return (sum(covered.values()), sum(fleet.values())), per_region


def _coverage(tested: int, registered: int, target: float) -> dict[str, Any]:
    return {"vehicles_tested": tested, "registered": registered, "coverage": ratio(tested, registered),
            "target": target, "met": share_at_least(tested, registered, target)}


def _quota(tested: int, target: int) -> dict[str, Any]:
    return {"vehicles_tested": tested, "target": target, "met": at_least(tested, target)}


def supervision(
    session: Session, month: date, region: str | None, scope: str | None, tz: ZoneInfo, policy: Policy,
) -> dict[str, Any]:
    """The month's figures and the heating season's, for the scope and per region and station."""
    where = Scope(scope, region)
    period = month_of(month)
    start, end = period.bounds(tz)

    counts = _counted(session, period, tz, where, ("valid", "verdict"))
    valid = sum(n for (ok, _), n in counts.items() if ok)
    judged = counts.get((True, "pass"), 0) + counts.get((True, "exceed"), 0)
    exceeded = counts.get((True, "exceed"), 0)

    tests = dict(session.execute(
        select(SupervisoryTest.kind, func.count())
        .where(SupervisoryTest.tested_at >= start, SupervisoryTest.tested_at < end,
               *where.where(SupervisoryTest.region))
        .group_by(SupervisoryTest.kind)
    ).all())
    snapshots = session.scalar(
        select(func.count()).select_from(Snapshot)
        .where(Snapshot.captured_at >= start, Snapshot.captured_at < end, *where.where(Snapshot.region))
    ) or 0
    violations = dict(session.execute(
        select(Violation.source, func.count())
        .where(Violation.status == ACTIVE, Violation.detected_at >= start, Violation.detected_at < end,
               violation_in_region(where.scope), violation_in_region(where.region))
        .group_by(Violation.source)
    ).all())

    tested, tested_by_region = vehicles_tested(session, period, where, tz)
    (diesel_tested, fleet), diesel_by_region = diesel_coverage(session, period, where, tz)
    season = heating_season(period.first, policy.heating_season_start, policy.heating_season_end)
    (winter_tested, winter_fleet), winter_by_region = diesel_coverage(session, season, where, tz)

    quota, share = policy.monthly_quota_vehicles, policy.winter_diesel_coverage
    regions = sorted(set(tested_by_region) | set(diesel_by_region) | set(winter_by_region))
    return {
        "region": region,
        "month": period.first.strftime("%Y-%m"),
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
        "quota": _quota(tested, quota),
        "winter": {"first": season.first, "last": season.last,
                   **_coverage(winter_tested, winter_fleet, share)},
        "regions": [
            {"region": code,
             "quota": _quota(tested_by_region.get(code, 0), quota),
             "diesel": _coverage(*diesel_by_region.get(code, (0, 0)), share),
             "winter": _coverage(*winter_by_region.get(code, (0, 0)), share)}
            for code in regions
        ],
        "stations": stations(session, period, where, tz),
    }


def stations(session: Session, period: Period, where: Scope, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Remote-sensing stations by valid share, lowest first (a silent station last), with
    their most frequent invalid reasons."""
    # Counts from ix_rs_events_measured alone; only the invalid minority is read for its reasons.
    valid: Counter[int] = Counter()
    invalid: Counter[int] = Counter()
    for (station_id, ok), n in _counted(session, period, tz, where, ("station_id", "valid")).items():
        (valid if ok else invalid)[station_id] += n
    reasons: dict[int, Counter[str]] = defaultdict(Counter)
    invalid_reasons = _counted(session, period, tz, where, ("station_id", "reasons"), lambda t: t.valid.is_(False))
    for (station_id, codes), n in invalid_reasons.items():
        for code in codes or []:
            reasons[station_id][code] += n
    listed = session.scalars(
        select(Station).where(Station.kind == "remote_sensing", *where.where(Station.region)).order_by(Station.code)
    ).all()
    out = []
    for st in listed:
        events = valid[st.id] + invalid[st.id]
        out.append({
            "code": st.code, "name": st.name, "region": st.region, "events": events, "valid": valid[st.id],
            "invalid": invalid[st.id], "valid_share": ratio(valid[st.id], events),
            "top_reasons": [{"reason": code, "count": n} for code, n in
                            sorted(reasons[st.id].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]],
        })
    out.sort(key=lambda s: (s["valid_share"] is None, s["valid_share"] or 0.0, s["code"]))
    return out


def exceedance(session: Session, month: date, region: str | None, scope: str | None, tz: ZoneInfo) -> dict[str, Any]:
    """Exceedance rate by fuel type and pollutant over the valid, judged measurements of the month."""
    where = Scope(scope, region)
    period = month_of(month)
    rows = _counted(session, period, tz, where, ("fuel_type", "exceeded"),
                    lambda t: t.valid.is_(True), lambda t: t.verdict.in_(("pass", "exceed")))
    judged: Counter[str] = Counter()
    exceeding: Counter[str] = Counter()
    pollutants: dict[str, Counter[str]] = defaultdict(Counter)
    for (fuel, exceeded), n in rows.items():
        judged[fuel] += n
        if exceeded:
            exceeding[fuel] += n
            for pollutant in exceeded:
                pollutants[fuel][pollutant] += n
    return {
        "region": region,
        "month": period.first.strftime("%Y-%m"),
        "by_fuel": [
            {"fuel_type": fuel, "judged": judged[fuel], "exceeded": exceeding[fuel],
             "exceedance_rate": ratio(exceeding[fuel], judged[fuel]),
             "pollutants": {p: {"exceeded": n, "rate": ratio(n, judged[fuel])}
                            for p, n in sorted(pollutants[fuel].items())}}
            for fuel in sorted(judged)
        ],
    }


def enforcement(session: Session, region: str | None, scope: str | None, today: date) -> dict[str, Any]:
    """Open and overdue cases and the active listings, as they stand today."""
    where = Scope(scope, region)
    cases = cases_query(scope=scope, region=region, today=today).where(Case.status != "closed").subquery()
    by_status = dict(session.execute(select(cases.c.status, func.count()).group_by(cases.c.status)).all())
    overdue = session.scalar(
        select(func.count()).select_from(cases_query(scope=scope, region=region, today=today)
                                         .where(overdue_clause(today)).subquery())
    ) or 0
    listings: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, rule, n in session.execute(
        select(Listing.list_kind, Listing.rule, func.count())
        .where(Listing.active.is_(True), *where.where(Listing.region))
        .group_by(Listing.list_kind, Listing.rule)
    ):
        listings[kind][rule] = n
    return {
        "region": region,
        "today": today,
        "cases": {"open": sum(by_status.values()), "by_status": by_status, "overdue": overdue},
        "listings": {kind: listings.get(kind, {}) for kind in ("blacklist", "key_supervision")},
    }


def overview(
    session: Session, month: date, region: str | None, scope: str | None, tz: ZoneInfo, policy: Policy, today: date,
) -> dict[str, Any]:
    """Everything the supervision dashboard shows: the answers of the three stats endpoints."""
    return {
        "supervision": supervision(session, month, region, scope, tz, policy),
        "exceedance": exceedance(session, month, region, scope, tz),
        "enforcement": enforcement(session, region, scope, today),
    }
