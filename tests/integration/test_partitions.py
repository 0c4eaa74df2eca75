"""rs_events by month of measured_at (core.partitions): idempotency across partitions on every
database, and on PostgreSQL the months created ahead and rows moved out of the default one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, text

from core import months, partitions
from remote_sensing.models import Event, EventKey
from tests.conftest import needs_postgres
from tests.factories import CST, event
from workers import jobs

EVENTS = "/api/v1/remote-sensing/events"


def test_months_arithmetic():
    assert months.next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert months.add_months(date(2026, 11, 1), 3) == date(2027, 2, 1)
    assert months.add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert partitions.partition_name("rs_events", date(2027, 2, 1)) == "rs_events_y2027m02"
    assert partitions.is_partition("rs_events_y2027m02") and partitions.is_partition("rs_events_default")
    assert not partitions.is_partition("rs_events") and not partitions.is_partition("rs_event_keys")


def test_a_replay_in_another_month_is_a_conflict_not_a_second_event(app, station):
    """The key is unique across partitions: the same event_id with a measured_at months
    earlier (another partition on PostgreSQL) is refused and changes nothing."""
    body = event("moved-1")
    first = station.post_json(EVENTS, body)
    assert first.status_code == 202
    earlier = {**body, "measured_at": (datetime.now(CST) - timedelta(days=95)).isoformat()}
    r = station.post_json(EVENTS, earlier)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "event_id_conflict"
    batch = station.post_json(EVENTS + "/batch", {"events": [earlier, body]})
    assert [x["status"] for x in batch.get_json()["results"]] == ["conflict", "duplicate"]
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1
        assert s.scalar(select(func.count()).select_from(EventKey)) == 1
        stored = s.scalars(select(Event)).one()
    assert (stored.id, stored.measured_at) == (first.get_json()["id"], datetime.fromisoformat(body["measured_at"]))


def _partition_of(app, pk: int) -> str:
    with app.extensions["lantian"].sessions() as s:
        return s.scalar(text("SELECT CAST(tableoid::regclass AS text) FROM rs_events WHERE id = :id"), {"id": pk})


@needs_postgres("declarative partitioning is PostgreSQL's")
def test_events_live_in_their_months_partition_and_months_are_kept_ahead(app, station, drain):
    now = datetime.now(UTC)
    r = station.post_json(EVENTS, event("now-1"))
    assert _partition_of(app, r.get_json()["id"]) == partitions.partition_name("rs_events", months.month_start(now))
    with app.extensions["lantian"].sessions() as s:
        have = [p.month for p in partitions.partitions(s, "rs_events")]
    ahead = months.add_months(months.month_start(now), partitions.MONTHS_AHEAD)
    assert ahead in have and have[-1] is None  # ...and the default partition last
    with app.app_context():
        assert jobs.maintain_partitions() == 0  # nothing missing: the sweep changes nothing


@needs_postgres("declarative partitioning is PostgreSQL's")
def test_a_backlog_older_than_every_month_goes_to_default_then_gets_its_month(app, station, drain, client, login):
    old_at = datetime(2025, 3, 15, 8, 0, tzinfo=CST)  # within the retention: kept whole
    bodies = [event(f"old-{n}", at=old_at + timedelta(minutes=n), measurements={"no_ppm": 1600}) for n in range(3)]
    ids = [x["id"] for x in station.post_json(EVENTS + "/batch", {"events": bodies}).get_json()["results"]]
    drain()
    assert {_partition_of(app, pk) for pk in ids} == {"rs_events_default"}
    officer = login("env_officer", "320200")
    before = {pk: client.get(f"{EVENTS}/{pk}", headers=officer).get_json() for pk in ids}

    with app.app_context():
        assert jobs.maintain_partitions() == 1
    assert {_partition_of(app, pk) for pk in ids} == {"rs_events_y2025m03"}
    after = {pk: client.get(f"{EVENTS}/{pk}", headers=officer).get_json() for pk in ids}
    assert after == before and {v["status"] for v in after.values()} == {"processed"}
    # A replay still finds the stored event where it went.
    assert station.post_json(EVENTS, bodies[0]).status_code == 200
    with app.app_context():
        assert jobs.maintain_partitions() == 0


def test_a_snapshot_replayed_with_another_capture_month_is_a_conflict(app, make_station):
    """Snapshots have their key apart too (bs_snapshot_keys): unique across partitions."""
    from remote_sensing.models import Snapshot, SnapshotKey
    from tests.integration.test_black_smoke import jpeg, metadata, upload

    smoke = make_station("BS001", kind="black_smoke")
    meta = metadata("bs-moved-1")
    first = upload(smoke, meta, [jpeg()])
    assert first.status_code == 202
    earlier = {**meta, "captured_at": (datetime.now(CST) - timedelta(days=95)).isoformat()}
    r = upload(smoke, earlier, [jpeg()])
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "event_id_conflict"
    assert upload(smoke, meta, [jpeg()]).status_code == 200
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Snapshot)) == 1
        assert s.scalar(select(func.count()).select_from(SnapshotKey)) == 1
        if s.get_bind().dialect.name == "postgresql":
            where = s.scalar(text("SELECT CAST(tableoid::regclass AS text) FROM bs_snapshots"))
            assert where == partitions.partition_name(
                "bs_snapshots", months.month_start(datetime.fromisoformat(meta["captured_at"]).astimezone(UTC)))

