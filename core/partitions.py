"""Monthly partitions of the tables PostgreSQL keeps by time (rs_events by `measured_at`,
bs_snapshots by `captured_at`).

One partition per UTC calendar month, `<table>_yYYYYmMM`, and `<table>_default` for rows
of a month that has none yet (a backlog older than the first month, or months the sweep
did not reach). The worker's periodic job keeps `MONTHS_AHEAD` months created ahead and
gives the months of rows in the default partition theirs, moving the rows into it. Each month
is created apart and then attached, which locks the parent table only against schema
changes (ingest and queries go on) and the default partition briefly; a lock not had
within `LOCK_TIMEOUT` leaves the month to the next sweep. SQLite keeps one table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exc, text
from sqlalchemy.orm import Session

from core.db import is_postgres
from core.months import add_months, month_start, next_month

log = logging.getLogger(__name__)

PARTITIONED = {"rs_events": "measured_at", "bs_snapshots": "captured_at"}
MONTHS_AHEAD = 3
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Partition:
    name: str
    month: date | None  # None: the default partition


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


_MONTHLY = re.compile(r"_y(\d{4})m(\d{2})$")
_PARTITION = re.compile(rf"^({'|'.join(PARTITIONED)})_(y\d{{4}}m\d{{2}}|default)$")


def is_partition(name: str | None) -> bool:
    """Whether a table is one of these partitions (schema comparison sees their parent only)."""
    return bool(name and _PARTITION.match(name))


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's `include_name` hook: everything but the partitions."""
    return not (type_ == "table" and is_partition(name))


def partitions(session: Session, table: str) -> list[Partition]:
    """The partitions of `table`, months in order, then the default one."""
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:table AS regclass)"), {"table": table}).all()
    found = []
    for name in names:
        m = _MONTHLY.search(name)
        found.append(Partition(name, date(int(m[1]), int(m[2]), 1) if m else None))
    return sorted(found, key=lambda p: (p.month is None, p.month or date.min))


def ensure_months(session: Session, today: date, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the missing months of each partitioned table from `today`'s through
    `months_ahead` after it, and the months of rows waiting in its default partition (a
    late backlog gets the months it fills, not every month since); the names created.
    Commits each month apart."""
    if not is_postgres(session):
        return []
    created = []
    for table, column in PARTITIONED.items():
        have = {p.month for p in partitions(session, table) if p.month is not None}
        month = first = month_start(today)
        wanted = set(session.scalars(text(
            f"SELECT DISTINCT CAST(date_trunc('month', {column}) AS date) FROM {table}_default")))
        while month <= add_months(first, months_ahead):
            wanted.add(month)
            month = next_month(month)
        for month in sorted(wanted - have):
            if _create_month(session, table, column, month):
                created.append(partition_name(table, month))
    return created


def _create_month(session: Session, table: str, column: str, month: date) -> bool:
    name, default = partition_name(table, month), f"{table}_default"
    bounds = {"lo": month, "hi": next_month(month)}
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        session.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        moved = session.execute(text(
            f"WITH moved AS (DELETE FROM {default} WHERE {column} >= :lo AND {column} < :hi RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"), bounds).rowcount
        session.execute(text(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{month}') TO ('{next_month(month)}')"))
        session.commit()
    except exc.OperationalError as err:  # a lock not had in time: the next sweep tries again
        session.rollback()
        log.warning("partition %s not created now: %s", name, err)
        return False
    log.info("partition %s created%s", name, f", {moved} rows moved in from {default}" if moved else "")
    return True
