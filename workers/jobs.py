"""Job functions: thin, they take ids, open a transaction and call services.

Every job is safe to run twice: the services key each side effect by a natural unique key.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select

from core import audit, partitions, queue, runtime
from core.db import utcnow
from enforcement import cases, evidence, violations
from remote_sensing import counts, processing, retention, snapshots
from remote_sensing.models import RECEIVED, Event, RunReset

log = logging.getLogger(__name__)


# A drain job returns after this long even while events keep coming (far inside RQ's
# 180 s job timeout): whatever arrived after it took the flag down queued its successor.
DRAIN_SLICE_S = 30.0


def judge_pending() -> int:
    """Drain waiting events in micro-batches; returns how many were judged.

    In a worker, a batch that was not full is followed by a pause of
    `judge_linger_ms` before the next claim, so live traffic is judged in batches of
    dozens instead of one or two events each paying a whole batch's fixed statements.
    """
    rt = runtime.current()
    linger = rt.settings.judge_linger_ms / 1000 if rt.redis is not None else 0.0
    if rt.redis is not None:
        # Events arriving meanwhile queue no job of their own (the flag is still set)...
        time.sleep(linger)
        # ...and from here on a new event must queue a new drain: this one may not see it.
        rt.redis.delete(queue.coalesce_key("judge"))
    total, deadline = 0, time.monotonic() + DRAIN_SLICE_S
    floors = processing.ClaimFloors()
    while True:
        with rt.sessions() as session, session.begin():
            events = processing.claim_pending(session, rt.settings.judge_batch_size, floors)
            resets = processing.claim_resets(session, rt.settings.judge_batch_size)
            if not events and not resets:
                return total
            batch = processing.judge_events(session, events, rt.settings.policy, rt.tz, resets)
            made = violations.record_remote_sensing(session, batch, rt.settings.policy, rt.tz)
            processing.save_verdicts(session, batch)
            evidence.keep(session, made)  # the run's verdicts are stored now
        total += len(events)
        if time.monotonic() > deadline:
            return total
        if len(events) < rt.settings.judge_batch_size and len(resets) < rt.settings.judge_batch_size:
            time.sleep(linger)


def analyse_snapshot(snapshot_id: int) -> bool:
    """Ringelmann estimate of one black-smoke snapshot; False when it was already analysed.

    OpenCV is limited to one thread on its first use in this process (inside
    ringelmann.estimate_ringelmann), never at import: the worker parent forks after import.
    """
    rt = runtime.current()
    with rt.sessions() as session, session.begin():
        return snapshots.analyse(session, snapshot_id, rt.settings.media_dir, rt.settings.policy.ringelmann_step)


def sweep() -> int:
    """Judge events and re-enqueue snapshot analyses that waited longer than the sweep delay
    (their job was lost); returns how many events were judged plus snapshots re-enqueued."""
    rt = runtime.current()
    cutoff = utcnow() - timedelta(seconds=rt.settings.sweep_after_s)
    with rt.sessions() as session, session.begin():
        stale = session.scalar(select(Event.id).where(Event.status == RECEIVED, Event.received_at < cutoff).limit(1))
        stale = stale or session.scalar(
            select(RunReset.id).where(RunReset.status == RECEIVED, RunReset.created_at < cutoff).limit(1))
        waiting = snapshots.unanalysed_ids(session, rt.settings.sweep_after_s, rt.settings.judge_batch_size)
        snapshots.requeue(session, waiting)
    if waiting:
        log.warning("sweeper re-enqueued %d snapshots unanalysed since before %s", len(waiting), cutoff.isoformat())
    if stale is None:
        return len(waiting)
    log.warning("sweeper found events waiting since before %s; judging them", cutoff.isoformat())
    return judge_pending() + len(waiting)


def maintain_partitions() -> int:
    """Create the coming months' partitions of the time-partitioned tables, retain the
    months past `retention_months` (remote_sensing.retention) and merge the judges' event
    counts (remote_sensing.counts); how many months changed."""
    rt = runtime.current()
    today = utcnow().date()
    with rt.sessions() as session:
        created = partitions.ensure_months(session, today)
        retained = retention.retain(session, today, rt.settings.retention_months)
        counts.merge(session)
        return len(created) + len(retained)


def mark_overdue() -> int:
    """Audit the cases that have passed their deadline since the last sweep (once per deadline)."""
    rt = runtime.current()
    with rt.sessions() as session, session.begin():
        return cases.record_overdue(session, cases.local_today(rt.tz))


def audit_checkpoint() -> int:
    """Append the signed head of the audit chain to LANTIAN_AUDIT_CHECKPOINT_DIR; its record id."""
    rt = runtime.current()
    if not rt.settings.audit_checkpoint_dir:
        return 0
    with rt.sessions() as session:
        return audit.append_checkpoint(session, rt.settings.audit_checkpoint_dir, rt.settings.secret_key or "").id
