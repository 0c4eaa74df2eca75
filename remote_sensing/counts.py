"""The statistics' counts of judged events (rs_event_counts), kept at the verdict.

A month's figures (enforcement.stats) read these counts, never the month's events: their
cost follows hours x stations x kinds of verdict, not the number of events, and a late
upload is counted when it is judged, whatever month it was measured in. The judge adds a
batch's counts in the transaction that writes its first verdicts (written once: DOMAIN.md
section 7), so a count exists exactly when its verdict does. It only inserts: two judges
never wait on each other's counter rows. The hourly sweep then merges each hour and
station's rows into one per kind (`merge`), which changes no sum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from remote_sensing.models import EventCount

# What the statistics group by (the verdict's columns), beside the UTC hour and the station.
KIND = ("valid", "verdict", "fuel_type", "exceeded", "reasons")
MERGE_SLICE = 1000  # (hour, station) pairs merged per transaction


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def hashable(value: Any) -> Any:
    """A count's column value as a grouping key (JSON lists as tuples)."""
    return tuple(value) if isinstance(value, list) else value


def _rows(counted: Counter[tuple[Any, ...]], merged: bool) -> list[dict[str, Any]]:
    return [{"hour": hour, "station_id": station_id, "n": n, "merged": merged,
             **{name: list(v) if isinstance(v, tuple) else v for name, v in zip(KIND, kind, strict=True)}}
            for (hour, station_id, *kind), n in counted.items()]


def add(session: Session, events: Iterable[Any]) -> None:
    """Count first verdicts (objects with `measured_at`, `station_id` and the KIND columns)."""
    counted: Counter[tuple[Any, ...]] = Counter(
        (_hour(e.measured_at), e.station_id, *(hashable(getattr(e, name)) for name in KIND)) for e in events)
    if counted:
        session.execute(insert(EventCount), _rows(counted, merged=False))


def merge(session: Session) -> int:
    """Merge the rows of every (hour, station) with unmerged rows into one row per kind,
    a slice of pairs per transaction; how many pairs. Rows committed meanwhile are left
    for the next sweep (the delete sees only what its statement sees), so no sum changes."""
    done = 0
    while True:
        pairs = session.execute(
            select(EventCount.hour, EventCount.station_id).where(EventCount.merged.is_(False))
            .group_by(EventCount.hour, EventCount.station_id).limit(MERGE_SLICE)).all()
        if not pairs:
            session.commit()
            return done
        gone = session.execute(
            delete(EventCount).where(tuple_(EventCount.hour, EventCount.station_id).in_(pairs))
            .returning(EventCount.hour, EventCount.station_id, EventCount.n,
                       *(getattr(EventCount, name) for name in KIND))).all()
        counted: Counter[tuple[Any, ...]] = Counter()
        for hour, station_id, n, *kind in gone:
            counted[(hour, station_id, *(hashable(v) for v in kind))] += n
        if counted:
            session.execute(insert(EventCount), _rows(counted, merged=True))
        session.commit()
        done += len(pairs)
