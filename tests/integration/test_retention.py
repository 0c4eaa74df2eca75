"""Retention (remote_sensing.retention): a month past the retention keeps every event that grounds
a violation, a revision or the judge's state, drops the passing and invalid rest, and its
statistics answer as before from the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from core import months, partitions
from enforcement.evidence import run_event_ids
from enforcement.models import Violation
from remote_sensing import retention
from remote_sensing.models import EventKey, RetainedMonth
from tests.conftest import needs_postgres
from tests.factories import CST, event, vehicle

EVENTS = "/api/v1/remote-sensing/events"


def _month_ago(n: int) -> datetime:
    month = months.add_months(months.month_start(datetime.now(UTC)), -n)
    return datetime(month.year, month.month, 15, 10, 0, tzinfo=CST)


def _figures(client, headers, month: str) -> dict:
    return {name: client.get(f"/api/v1/stats/{name}?month={month}", headers=headers).get_json()
            for name in ("supervision", "exceedance", "stations")}


def test_retention_is_nothing_on_sqlite_and_when_switched_off(app):
    with app.extensions["lantian"].sessions() as s:
        today = datetime.now(UTC).date()
        assert retention.due_months(s, today, 0) == []
        if s.get_bind().dialect.name != "postgresql":
            assert retention.retain(s, today, 1) == [] and retention.retained_before(s) is None


@needs_postgres("retention swaps PostgreSQL partitions")
def test_a_retained_month_keeps_its_evidence_and_its_statistics(app, client, login, station, drain, registry):
    registry(vehicle("苏B00001"), vehicle("苏B00002"), vehicle("苏B00003", fuel_type="gasoline", color="blue"))
    at = _month_ago(2)
    high = {"no_ppm": 1600}
    bodies = [
        event("a1", at=at, plate="苏B00001", measurements=high),  # a1 + a2: a violation
        event("a2", at=at + timedelta(hours=1), plate="苏B00001", measurements=high),
        event("a3", at=at + timedelta(hours=2), plate="苏B00001"),  # the vehicle's latest: its run state
        event("b1", at=at, plate="苏B00002"),
        event("b2", at=at + timedelta(days=1), plate="苏B00002"),
        event("c1", at=at, plate="苏B00003", color="blue"),
        event("c2", at=at + timedelta(days=2), plate="苏B00003", color="blue"),
        event("x1", at=at, speed_kmh=200),  # invalid
    ]
    ids = {}
    for body in bodies:
        ids[body["event_id"]] = station.post_json(EVENTS, body).get_json()["id"]
        drain()
    officer = login("env_officer", "320200")
    month = at.strftime("%Y-%m")
    before = _figures(client, officer, month)
    assert before["supervision"]["remote_sensing"] == {
        "events": 8, "valid": 7, "judged": 7, "exceeded": 2, "exceedance_rate": 0.2857}
    assert before["supervision"]["quota"]["vehicles_tested"] == 3
    violations = client.get("/api/v1/violations", headers=officer).get_json()["items"]
    assert len(violations) == 1
    violation_before = client.get(f"/api/v1/violations/{violations[0]['id']}", headers=officer).get_json()
    events_before = {k: client.get(f"{EVENTS}/{pk}", headers=officer).get_json() for k, pk in ids.items()}

    rt = app.extensions["lantian"]
    today = datetime.now(UTC).date()
    with rt.sessions() as s:
        partitions.ensure_months(s, today)  # the month's rows leave the default partition first
        # Two months old: not past a retention of 2 (older partitions other tests made may be).
        assert months.month_start(at) not in retention.due_months(s, today, 2)
        assert months.month_start(at) in retention.retain(s, today, 1)
        assert retention.retain(s, today, 1) == []  # done once
        record = s.get(RetainedMonth, months.month_start(at))
        assert (record.events_counted, record.events_kept) == (8, 5)
        stored_keys = set(s.scalars(select(EventKey.id)))

    kept = {"a1", "a2", "a3", "b2", "c2"}
    for key, pk in ids.items():
        r = client.get(f"{EVENTS}/{pk}", headers=officer)
        if key in kept:
            assert r.get_json() == events_before[key] and pk in stored_keys
        else:
            assert r.status_code == 404 and pk not in stored_keys
    assert _figures(client, officer, month) == before
    assert client.get(f"/api/v1/violations/{violations[0]['id']}", headers=officer).get_json() == violation_before
    with rt.sessions() as s:  # every violation still finds every event of its run
        for violation in s.scalars(select(Violation)):
            wanted = set(run_event_ids(violation.details))
            found = set(s.scalars(text("SELECT id FROM rs_events WHERE id = ANY(:ids)"), {"ids": list(wanted)}))
            assert wanted and found == wanted
        # The kept partition has one index per index of rs_events, each attached to it (built
        # before the swap, not by it), and no check constraint the parent does not have.
        name = partitions.partition_name("rs_events", months.month_start(at))
        indexes = sorted(s.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'rs_events'")))
        attached = s.scalars(text(
            "SELECT p.relname FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid "
            "JOIN pg_class p ON p.oid = h.inhparent WHERE i.indrelid = CAST(:t AS regclass)"), {"t": name})
        own = s.scalar(text("SELECT count(*) FROM pg_index WHERE indrelid = CAST(:t AS regclass)"), {"t": name})
        assert sorted(attached) == indexes and own == len(indexes)
        checks = "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"
        assert s.scalars(text(checks), {"t": name}).all() == s.scalars(text(checks), {"t": "rs_events"}).all()
