"""Idempotent ingest as a property: any mix of replays stores each event_id once, first body wins."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.db import DriverConnection
from core.identity import Station
from remote_sensing import ingest
from remote_sensing.models import Event
from tests.conftest import needs_postgres
from tests.factories import event

_codes = itertools.count()
BODIES = {(eid, v): event(f"E{eid}", lane=v + 1) for eid in range(3) for v in range(2)}

requests = st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1)), min_size=1, max_size=4),
                    min_size=1, max_size=6)


@contextmanager
def store_of(rt, kind: str) -> Iterator[ingest.Store]:
    """The store each endpoint uses: a Session anywhere, the driver connection on PostgreSQL."""
    if kind == "session":
        with rt.sessions() as s:
            yield ingest.SessionStore(s)
        return
    connection = DriverConnection(rt.engine)
    try:
        yield ingest.DriverStore(connection.conn, rt.dispatcher)
    finally:
        connection.release()


@pytest.mark.parametrize("kind", ["session", pytest.param("driver", marks=needs_postgres("a psycopg connection"))])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests)
def test_replays_never_duplicate_or_overwrite(app, kind, calls):
    rt = app.extensions["lantian"]
    with rt.sessions() as s, s.begin():
        station = Station(code=f"P{next(_codes)}", kind="remote_sensing", region="320200",
                          calibrated_until=date(2099, 1, 1), key_id=f"k{next(_codes)}", secret="s")
        s.add(station)
    first_variant: dict[int, int] = {}
    ids: dict[int, int] = {}
    for call in calls:
        with store_of(rt, kind) as store:
            outcomes = ingest.ingest(store, station.id, [BODIES[c] for c in call], 300)
        for (eid, variant), outcome in zip(call, outcomes, strict=True):
            expected_first = eid not in first_variant
            first_variant.setdefault(eid, variant)
            ids.setdefault(eid, outcome.id)
            assert outcome.id == ids[eid]
            if variant != first_variant[eid]:
                assert outcome.status == ingest.CONFLICT
            elif expected_first:
                assert outcome.status == ingest.RECEIVED
            else:
                assert outcome.status == ingest.DUPLICATE
    with rt.sessions() as s:
        rows = s.execute(select(Event.event_id, Event.payload).where(Event.station_id == station.id)).all()
    assert sorted(r.event_id for r in rows) == sorted(f"E{e}" for e in first_variant)
    for row in rows:
        assert row.payload["lane"] == first_variant[int(row.event_id[1:])] + 1
