"""Retention of events as policy (PostgreSQL): a month older than `retention_months` keeps
its evidence and its statistics, not its passing measurements.

For each such UTC month, oldest first, one transaction:

1. counts its validly measured vehicles into rs_tested_vehicles, which the statistics'
   distinct-vehicle figures read for months before the retention mark (enforcement.stats;
   the judge already counted its verdicts into rs_event_counts, remote_sensing.counts);
2. copies the events that must stay into a new table, the month's *kept partition*: every
   event a violation names (its run, the event that completed it, the one that withdrew
   it), every event with a verdict revision or causing one, every vehicle's latest
   judged event (the judge's run state starts there) and every event not yet judged;
   listings and cases reach events only through violations, so theirs are among these;
3. deletes the idempotency keys of the dropped events;
4. swaps the kept partition in for the month's and drops the old one. Detaching locks the
   parent table against every read and write until the commit, so all the work is done
   before it (waited for at most `partitions.LOCK_TIMEOUT`): the kept partition has its
   indexes already (LIKE ... INCLUDING INDEXES, which the attach adopts instead of building)
   and a CHECK of its bounds (so the attach does not scan it);
5. records the month in rs_retained_months.

The month's partition is locked against writes from the start, so nothing written while
it is copied is lost. A lock not had in time rolls the month back, for the next sweep.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sqlalchemy import exc, func, insert, select, text
from sqlalchemy.orm import Session

from core import months, partitions
from core.db import is_postgres
from remote_sensing.models import RetainedMonth

log = logging.getLogger(__name__)

TABLE = "rs_events"

# Every event id something else names as evidence or as judge state. A violation's run is
# read as enforcement.evidence.run_event_ids reads it (`details.events`, else
# `details.event_id`); change the two together.
_GROUNDS = """
SELECT CAST(source_ref AS bigint) FROM violations WHERE source = 'remote_sensing' AND source_ref ~ '^[0-9]{1,18}$'
UNION SELECT CAST(jsonb_array_elements_text(details->'events') AS bigint) FROM violations
      WHERE source = 'remote_sensing' AND jsonb_typeof(details->'events') = 'array'
UNION SELECT CAST(details->>'event_id' AS bigint) FROM violations
      WHERE source = 'remote_sensing' AND jsonb_typeof(details->'event_id') = 'number'
UNION SELECT withdrawn_by_event FROM violations WHERE withdrawn_by_event IS NOT NULL
UNION SELECT event_id FROM rs_verdict_revisions
UNION SELECT cause_event FROM rs_verdict_revisions WHERE cause_event IS NOT NULL
UNION SELECT event_id FROM rs_vehicle_runs
"""


def retained_before(session: Session) -> datetime | None:
    """The end of the latest retained month: statistics before it read the counts."""
    month = session.scalar(select(func.max(RetainedMonth.month)))
    return None if month is None else datetime.combine(months.next_month(month), datetime.min.time(), UTC)


def due_months(session: Session, today: date, retention_months: int) -> list[date]:
    """Months of rs_events older than the retention and not yet retained, oldest first."""
    if retention_months <= 0 or not is_postgres(session):
        return []
    mark = months.add_months(months.month_start(today), -retention_months)
    done = set(session.scalars(select(RetainedMonth.month)))
    return [p.month for p in partitions.partitions(session, TABLE)
            if p.month is not None and p.month < mark and p.month not in done]


def retain(session: Session, today: date, retention_months: int) -> list[date]:
    """Retain every due month (one transaction each); the months retained."""
    done = []
    for month in due_months(session, today, retention_months):
        if not _retain_month(session, month):
            break  # later months wait: the statistics' mark only moves forward in order
        done.append(month)
    return done


def _retain_month(session: Session, month: date) -> bool:
    name = partitions.partition_name(TABLE, month)
    kept = f"{name}_kept"
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'"))
        session.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))
        counted = session.scalar(text(f"SELECT count(*) FROM {name} WHERE status = 'processed'"))
        session.execute(text(
            "INSERT INTO rs_tested_vehicles (hour, station_id, vehicle_id) "
            f"SELECT DISTINCT date_trunc('hour', measured_at), station_id, vehicle_id FROM {name} "
            "WHERE status = 'processed' AND valid IS TRUE AND vehicle_id IS NOT NULL"))
        session.execute(text(
            f"CREATE TABLE {kept} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"))
        # The grounds as a table the month is joined to: `id IN (grounds)` beside an OR is a
        # subplan that, once the grounds outgrow work_mem, scans them all for every event
        # (10 minutes and unfinished for a month of 750,000 events and 1 M violations).
        session.execute(text(f"CREATE TEMP TABLE retention_grounds ON COMMIT DROP AS SELECT * FROM ({_GROUNDS}) g(id)"))
        session.execute(text("ANALYZE retention_grounds"))
        n_kept = session.execute(text(
            f"INSERT INTO {kept} SELECT * FROM {name} WHERE status <> 'processed' OR violation_id IS NOT NULL "
            f"UNION ALL SELECT e.* FROM {name} e JOIN retention_grounds g ON g.id = e.id "
            "WHERE e.status = 'processed' AND e.violation_id IS NULL")).rowcount
        start, end = month, months.next_month(month)
        session.execute(text(f"ALTER TABLE {kept} ADD CONSTRAINT {kept}_bounds "
                             f"CHECK (measured_at >= '{start}' AND measured_at < '{end}')"))
        dropped = session.execute(text(
            f"DELETE FROM rs_event_keys WHERE id IN (SELECT id FROM {name} EXCEPT SELECT id FROM {kept})")).rowcount
        session.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {name}"))
        session.execute(text(f"ALTER TABLE {TABLE} ATTACH PARTITION {kept} FOR VALUES FROM ('{start}') TO ('{end}')"))
        session.execute(text(f"DROP TABLE {name}"))
        session.execute(text(f"ALTER TABLE {kept} RENAME TO {name}"))
        session.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {kept}_bounds"))  # the bound says it now
        session.execute(insert(RetainedMonth).values(month=month, events_counted=counted, events_kept=n_kept))
        session.commit()
    except exc.OperationalError as err:  # a lock not had in time: the next sweep tries again
        session.rollback()
        log.warning("month %s not retained now: %s", name, err)
        return False
    log.info("retained %s: %d judged events, %d kept, %d dropped", name, counted, n_kept, dropped)
    return True
