"""Job functions: thin, they take ids, open a transaction and call services.

Every job is safe to run twice: the services key each side effect by a natural unique key.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from core import queue, runtime
from core.db import utcnow
from enforcement import violations
from remote_sensing import processing
from remote_sensing.models import RECEIVED, Event

log = logging.getLogger(__name__)


def judge_pending() -> int:
    """Drain waiting events in micro-batches; returns how many were judged."""
    rt = runtime.current()
    if rt.redis is not None:
        # From here on a new event must queue a new drain: this one may not see it.
        rt.redis.delete(queue.coalesce_key("judge"))
    total = 0
    while True:
        with rt.sessions() as session, session.begin():
            events = processing.claim_pending(session, rt.settings.judge_batch_size)
            if not events:
                return total
            judged = processing.judge_events(session, events, rt.settings.policy, rt.tz)
            violations.record_remote_sensing(session, judged, rt.settings.policy, rt.tz)
            total += len(events)


def sweep() -> int:
    """Judge events that waited longer than the sweep delay (their job was lost)."""
    rt = runtime.current()
    cutoff = utcnow() - timedelta(seconds=rt.settings.sweep_after_s)
    with rt.sessions() as session:
        stale = session.scalar(select(Event.id).where(Event.status == RECEIVED, Event.received_at < cutoff).limit(1))
    if stale is None:
        return 0
    log.warning("sweeper found events waiting since before %s; judging them", cutoff.isoformat())
    return judge_pending()
