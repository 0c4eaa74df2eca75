"""The statistics' counts (remote_sensing.counts): kept at the verdict, equal to a recount of
the judged events whatever the batches, unchanged by merging, and counting a late upload in
the month it was measured, retained or not; the tested months, rebuilt in another zone's
months (remote_sensing.tested)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from core import months, partitions
from core.identity import Station
from enforcement import stats
from enforcement.targets import Period
from remote_sensing import counts, retention, tested
from remote_sensing.models import PROCESSED, Event, EventCount
from remote_sensing.models import TestedMonth as MonthRow  # not a test class
from tests.conftest import cli_json, needs_postgres
from tests.factories import CST, event, vehicle

EVENTS = "/api/v1/remote-sensing/events"


def _kind(row) -> tuple:
    return tuple(json.dumps(getattr(row, name)) for name in counts.KIND)


def counts_of(s) -> Counter:
    """The counts kept, summed per hour, station and kind."""
    out: Counter = Counter()
    for row in s.scalars(select(EventCount)):
        out[(row.hour, row.station_id, *_kind(row))] += row.n
    return out


def recount(s) -> Counter:
    """The judged events counted again, the same way."""
    return Counter((e.measured_at.replace(minute=0, second=0, microsecond=0), e.station_id, *_kind(e))
                   for e in s.scalars(select(Event).where(Event.status == PROCESSED)))


def months_kept(s) -> set:
    """The tested months kept (remote_sensing.tested)."""
    return {(r.month, r.region, r.vehicle_id) for r in s.scalars(select(MonthRow))}


def months_recounted(s, tz) -> set:
    """The validly measured vehicles of the judged events, by local month and station region."""
    return {(months.month_start(at.astimezone(tz)), region, vehicle_id) for at, region, vehicle_id in s.execute(
        select(Event.measured_at, Station.region, Event.vehicle_id).join(Station, Station.id == Event.station_id)
        .where(Event.status == PROCESSED, Event.valid.is_(True), Event.vehicle_id.is_not(None)))}


def test_counts_equal_a_recount_of_the_verdicts_and_merging_changes_no_sum(
        app, client, login, station, make_station, drain, registry):
    registry(vehicle("苏B00001"), vehicle("苏B00002", fuel_type="gasoline", color="blue"))
    other = make_station("RS002")
    at = datetime(2026, 11, 20, 9, 40, tzinfo=CST)
    bodies = [event(f"k{i}", at=at + timedelta(minutes=13 * i), plate=("苏B00001", "苏B00002")[i % 2],
                    color=("yellow", "blue")[i % 2], measurements={"no_ppm": 1600 if i % 3 == 0 else 800},
                    speed_kmh=200 if i % 5 == 0 else 42.5) for i in range(12)]
    for i, body in enumerate(bodies):
        assert (station, other)[i % 2].post_json(EVENTS, body).status_code == 202
        if i % 4 == 3:
            drain()  # batches of different sizes
    drain()
    officer = login("env_officer", "320200")
    figures = {name: client.get(f"/api/v1/stats/{name}?month=2026-11", headers=officer).get_json()
               for name in ("supervision", "exceedance", "stations")}
    rt = app.extensions["lantian"]
    with rt.sessions() as s:
        judged = recount(s)
        assert sum(judged.values()) == 12
        assert counts_of(s) == judged
        assert months_kept(s) == months_recounted(s, rt.tz) and len(months_kept(s)) == 2
        unmerged = s.scalar(select(EventCount.id).where(EventCount.merged.is_(False)).limit(1))
        assert unmerged is not None
        assert counts.merge(s) >= 1
        assert counts_of(s) == judged
        rows = s.scalars(select(EventCount)).all()
        assert all(r.merged for r in rows)
        assert len(rows) == len(judged)  # one row per hour, station and kind
        assert counts.merge(s) == 0
    for name, before in figures.items():
        assert client.get(f"/api/v1/stats/{name}?month=2026-11", headers=officer).get_json() == before


def test_merging_leaves_rows_it_did_not_see_and_merges_them_next_time(app, station):
    rt = app.extensions["lantian"]
    hour = datetime(2026, 11, 20, 1, tzinfo=UTC)
    with rt.sessions() as s:
        station_id = s.scalar(text("SELECT id FROM stations WHERE key_id = :k"), {"k": station.key_id})
        row = dict(hour=hour, station_id=station_id, valid=True, verdict="pass", fuel_type="diesel",
                   exceeded=[], reasons=[])
        s.add_all([EventCount(**row, n=2), EventCount(**row, n=3)])
        s.commit()
        assert counts.merge(s) == 1
        s.add(EventCount(**row, n=4))
        s.commit()
        assert [(r.n, r.merged) for r in s.scalars(select(EventCount).order_by(EventCount.id))] == [
            (5, True), (4, False)]
        assert counts.merge(s) == 1
        assert [(r.n, r.merged) for r in s.scalars(select(EventCount))] == [(9, True)]


def test_distinct_vehicles_read_whole_months_from_the_tested_months_and_other_days_from_the_events(
        app, station, drain, registry):
    registry(*(vehicle(f"苏B0000{i}") for i in range(1, 5)))
    days = {1: datetime(2026, 10, 10, 9, tzinfo=CST), 2: datetime(2026, 10, 20, 9, tzinfo=CST),
            3: datetime(2026, 11, 1, 0, 0, tzinfo=CST), 4: datetime(2026, 11, 30, 23, 59, tzinfo=CST)}
    for i, at in days.items():
        assert station.post_json(EVENTS, event(f"d{i}", at=at, plate=f"苏B0000{i}")).status_code == 202
    assert station.post_json(EVENTS, event("d5", at=days[2], plate="苏B00004", speed_kmh=200)).status_code == 202
    drain()
    rt = app.extensions["lantian"]
    everywhere = stats.Scope(None, None)
    with rt.sessions() as s:
        assert {m for m, _, _ in months_kept(s)} == {datetime(2026, 10, 1).date(), datetime(2026, 11, 1).date()}
        assert months_kept(s) == months_recounted(s, rt.tz)  # the invalid reading tested nobody

        def tested(first: tuple[int, int, int], last: tuple[int, int, int]) -> int:
            return stats.vehicles_tested(s, Period(datetime(*first).date(), datetime(*last).date()), everywhere,
                                         rt.tz)[0]

        assert tested((2026, 10, 1), (2026, 10, 31)) == 2  # one whole month
        assert tested((2026, 10, 15), (2026, 11, 30)) == 3  # part of October, all of November
        assert tested((2026, 10, 15), (2026, 11, 29)) == 2  # ends the day before vehicle 4
        assert tested((2026, 10, 1), (2026, 11, 30)) == 4


@needs_postgres("retention swaps PostgreSQL partitions")
def test_a_late_upload_counts_in_its_retained_month(app, client, login, station, drain, registry):
    registry(vehicle("苏B00001"), vehicle("苏B00002"))
    month = months.add_months(months.month_start(datetime.now(UTC)), -3)
    at = datetime(month.year, month.month, 12, 10, 0, tzinfo=CST)
    station.post_json(EVENTS, event("r1", at=at, plate="苏B00001"))
    drain()
    officer = login("env_officer", "320200")
    path = f"/api/v1/stats/supervision?month={at:%Y-%m}"

    def events() -> tuple[int, int]:
        figures = client.get(path, headers=officer).get_json()
        return figures["remote_sensing"]["events"], figures["quota"]["vehicles_tested"]

    rt = app.extensions["lantian"]
    today = datetime.now(UTC).date()
    with rt.sessions() as s:
        partitions.ensure_months(s, today)
        assert months.month_start(at) in retention.retain(s, today, 1)
    before, vehicles = events()
    assert before >= 1 and vehicles >= 1
    # Uploaded after its month was retained: counted there when judged, its vehicle too.
    assert station.post_json(EVENTS, event("r2", at=at + timedelta(days=3), plate="苏B00002")).status_code == 202
    drain()
    assert events() == (before + 1, vehicles + 1)


def test_the_tested_months_are_rebuilt_in_another_zones_months_and_back(app, runner, station, drain, registry):
    registry(vehicle("苏B00001"), vehicle("苏B00002"))
    # 03:00 on 1 November in China is still 31 October in UTC.
    assert station.post_json(EVENTS, event("z1", at=datetime(2026, 11, 1, 3, tzinfo=CST),
                                           plate="苏B00001")).status_code == 202
    assert station.post_json(EVENTS, event("z2", at=datetime(2026, 11, 15, 9, tzinfo=CST),
                                           plate="苏B00002")).status_code == 202
    drain()
    rt = app.extensions["lantian"]
    utc = ZoneInfo("UTC")
    with rt.sessions() as s:
        kept = months_kept(s)
        assert kept == months_recounted(s, rt.tz) and {m.month for m, _, _ in kept} == {11}
        assert tested.rebuild(s, utc) == 2
        s.commit()
        assert months_kept(s) == months_recounted(s, utc) and {m.month for m, _, _ in months_kept(s)} == {10, 11}
    assert cli_json(runner, "db", "rebuild-tested-months") == {"rows": 2}  # back in LANTIAN_TIMEZONE
    with rt.sessions() as s:
        assert months_kept(s) == kept


@needs_postgres("retention swaps PostgreSQL partitions")
def test_a_rebuild_keeps_the_vehicles_of_retained_events(app, runner, station, drain, registry):
    registry(vehicle("苏B00001"))
    today = datetime.now(UTC).date()
    month = months.add_months(months.month_start(today), -3)
    old, recent = datetime(month.year, month.month, 12, 10, tzinfo=CST), datetime.now(CST) - timedelta(hours=1)
    for n, at in enumerate((old, recent)):  # the recent event is the vehicle's latest: the old one goes
        assert station.post_json(EVENTS, event(f"k{n}", at=at, plate="苏B00001")).status_code == 202
    drain()
    rt = app.extensions["lantian"]
    with rt.sessions() as s:
        kept = months_kept(s)
        partitions.ensure_months(s, today)
        assert months.month_start(old) in retention.retain(s, today, 1)
        assert s.scalar(select(func.count()).select_from(Event).where(Event.event_id == "k0")) == 0
    assert cli_json(runner, "db", "rebuild-tested-months") == {"rows": 2}
    with rt.sessions() as s:
        assert months_kept(s) == kept and month in {m for m, _, _ in kept}
