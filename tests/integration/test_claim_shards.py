"""Judges claim waiting events by shard of the plate as read (remote_sensing.processing.claim_pending):
on PostgreSQL a shard is one judge's until its transaction ends, so two judges never hold
events of one plate at once and do not wait on each other's claims."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from core.identity import Station
from enforcement.models import Violation
from remote_sensing import ingest, processing
from remote_sensing.models import Event, claim_shard
from tests.conftest import needs_postgres
from tests.factories import event
from tests.integration.test_judgement_property import BASE, READINGS, expected, judge_at_once
from workers import jobs

PLATES = [f"苏B{20000 + 37 * k}" for k in range(24)]


def backlog(app, per_plate: int = 2) -> list[dict]:
    """Waiting events, `per_plate` for each plate, stored as the ingest stores them (no job queued)."""
    rt = app.extensions["lantian"]
    bodies = [event(f"p{k}-{n}", at=BASE + timedelta(hours=3 * n), plate=plate)
              for k, plate in enumerate(PLATES) for n in range(per_plate)]
    with rt.sessions() as s:
        station_id = s.scalar(select(Station.id).where(Station.code == "RS001"))
        outcomes = ingest.ingest(ingest.SessionStore(s), station_id, bodies, 300)
    assert {o.status for o in outcomes} == {"received"}
    return bodies


def test_ingest_stores_each_events_claim_shard(app, station):
    bodies = backlog(app, per_plate=1)
    with app.extensions["lantian"].sessions() as s:
        stored = dict(s.execute(select(Event.event_id, Event.claim_shard)).all())
    assert stored == {b["event_id"]: claim_shard(b) for b in bodies}
    assert len(set(stored.values())) > 1


@needs_postgres("advisory locks and SKIP LOCKED are PostgreSQL's")
def test_two_claims_at_once_take_other_shards_and_other_plates(app, station):
    backlog(app)
    rt = app.extensions["lantian"]
    plate_of = {}
    with rt.sessions() as first, rt.sessions() as second:
        with first.begin():
            a = processing.claim_pending(first, 5)
            with second.begin():
                second.execute(select(func.set_config("lock_timeout", "2s", True)))  # a wait would fail
                b = processing.claim_pending(second, 1000)
                for e in a + b:
                    plate_of[e.id] = e.payload["plate"]["number"]
                assert len(a) == 5 and b
                assert not {e.id for e in a} & {e.id for e in b}
                assert not {plate_of[e.id] for e in a} & {plate_of[e.id] for e in b}
                assert not {claim_shard(e.payload) for e in a} & {claim_shard(e.payload) for e in b}
                second.rollback()
            first.rollback()
        with second.begin():  # both ended: every shard can be claimed again
            assert len(processing.claim_pending(second, 1000)) == 2 * len(PLATES)


@needs_postgres("two judges at once need PostgreSQL's row and advisory locks")
def test_two_judges_over_many_plates_give_the_outcome_of_judging_in_order(app, station):
    rt = app.extensions["lantian"]
    rng = random.Random(7)
    items = [{"vehicle": v, "station": 0, "kind": rng.choice(["exceed", "exceed", "pass", "invalid"]),
              "at": BASE + timedelta(hours=3 * k)} for v in range(len(PLATES)) for k in range(6)]
    order = list(range(len(items)))
    rng.shuffle(order)
    pks = [0] * len(items)
    for n in order:
        measurements, extra = READINGS[items[n]["kind"]]
        r = station.post_json("/api/v1/remote-sensing/events", event(
            f"e{n}", at=items[n]["at"], plate=PLATES[items[n]["vehicle"]], measurements=measurements, **extra))
        assert r.status_code == 202, r.get_json()
        pks[n] = r.get_json()["id"]
    rt.settings.judge_batch_size = 7
    judge_at_once(2, until_empty=True)
    jobs.judge_pending()  # what a judge skipped while the other held its shard
    grounding, _ = expected(items, pks, rt.settings.policy)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.status == "received")) == 0
        active = {int(v.source_ref) for v in s.scalars(select(Violation).where(Violation.status == "active"))}
    assert active == grounding


@needs_postgres("the claims' floors read PostgreSQL's partial indexes")
def test_a_drain_claims_above_its_floors_and_from_the_start_before_it_finds_nothing(app, station):
    backlog(app)
    rt = app.extensions["lantian"]
    floors = processing.ClaimFloors()
    with rt.sessions() as s, s.begin():
        claimed = processing.claim_pending(s, 1000, floors)
        assert len(claimed) == 2 * len(PLATES)
        s.execute(Event.__table__.update().where(Event.id.in_([e.id for e in claimed])).values(status="processed"))
    # Waiting events far below the floors (as if committed late): still found, from the start.
    with rt.sessions() as s, s.begin():
        s.execute(Event.__table__.update().where(Event.id.in_([e.id for e in claimed[:3]]))
                  .values(status="received"))
    floors.oldest = max(floors.oldest, max(e.id for e in claimed) + processing.FLOOR_MARGIN)
    floors.shards = {k: floors.oldest for k in range(processing.JUDGE_SHARDS)}
    with rt.sessions() as s, s.begin():
        again = processing.claim_pending(s, 1000, floors)
    assert sorted(e.id for e in again) == sorted(e.id for e in claimed[:3])
    assert floors.oldest < max(e.id for e in claimed)  # claimed after going back to the start
