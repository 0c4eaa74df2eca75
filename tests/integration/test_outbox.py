"""Nothing is lost: the events table is the outbox, and jobs are safe to run twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from remote_sensing.models import Event
from tests.conftest import TEST_REDIS
from tests.factories import event
from workers import jobs

EVENTS = "/api/v1/remote-sensing/events"


def statuses(app) -> list[str]:
    with app.extensions["lantian"].sessions() as s:
        return list(s.scalars(select(Event.status).order_by(Event.id)))


def lose_the_job(app) -> None:
    """As after a Redis flush (queued job gone) or a crash of the inline job before its commit."""
    rt = app.extensions["lantian"]
    if rt.redis is not None:
        rt.redis.flushdb()
    with rt.sessions() as s, s.begin():
        s.execute(Event.__table__.update().values(status="received", verdict=None))


def test_lost_job_is_recovered_by_the_sweeper(app, station):
    rt = app.extensions["lantian"]
    station.post_json(EVENTS, event("a"))
    lose_the_job(app)
    assert statuses(app) == ["received"]
    rt.settings.sweep_after_s = 3600
    assert jobs.sweep() == 0  # not stale yet: the sweeper leaves it to its job
    rt.settings.sweep_after_s = 0
    assert jobs.sweep() == 1
    assert statuses(app) == ["processed"]


def test_a_drain_job_returns_after_its_time_slice_and_the_next_one_goes_on(app, station, monkeypatch):
    rt = app.extensions["lantian"]
    for n in range(3):
        station.post_json(EVENTS, event(f"slice-{n}"))
    lose_the_job(app)
    rt.settings.judge_batch_size = 1
    monkeypatch.setattr(jobs, "DRAIN_SLICE_S", 0.0)  # every batch outlasts the slice
    assert jobs.judge_pending() == 1
    assert statuses(app) == ["processed", "received", "received"]
    assert jobs.judge_pending() == 1 and jobs.judge_pending() == 1 and jobs.judge_pending() == 0


def test_a_crashed_batch_leaves_events_waiting(app, station):
    from remote_sensing import processing

    rt = app.extensions["lantian"]
    station.post_json(EVENTS, event("a"))
    lose_the_job(app)
    with rt.sessions() as s:
        s.begin()
        claimed = processing.claim_pending(s, 10)
        processing.save_verdicts(s, processing.judge_events(s, claimed, rt.settings.policy, rt.tz))
        s.rollback()  # the worker died before commit
    assert statuses(app) == ["received"]
    assert jobs.judge_pending() == 1
    assert jobs.judge_pending() == 0  # a second run finds nothing: no double processing
    assert statuses(app) == ["processed"]


@pytest.mark.skipif(not TEST_REDIS, reason="a real worker process needs LANTIAN_TEST_REDIS_URL")
def test_real_lantian_worker_process_judges_events(app, station, settings):
    env = {
        **os.environ,
        "LANTIAN_DATABASE_URL": settings.database_url,
        "LANTIAN_REDIS_URL": settings.redis_url,
        "LANTIAN_QUEUE_NAME": settings.queue_name,
        "LANTIAN_SECRET_KEY": settings.secret_key,
    }
    ids = [station.post_json(EVENTS, event(f"w{i}")).get_json()["id"] for i in range(5)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "lantian.cli", "worker", "--fork"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and statuses(app).count("processed") < len(ids):
            time.sleep(0.2)
        assert statuses(app) == ["processed"] * len(ids)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
