"""Taking station events in: validate, store exactly once, then hand them to the judge.

`event_id` is the idempotency key per station: the same body again is a duplicate (the
stored id is answered), a different body under the same id is a conflict and changes
nothing.

One algorithm, two stores: `SessionStore` works on any database inside the request's
transaction; `DriverStore` runs the same statements on a raw psycopg connection in
autocommit (PostgreSQL), where a Session cost more CPU than the insert itself. Either way
the job is handed over only once the rows are committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from marshmallow import ValidationError
from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core.db import driver_insert_keyed_returning, driver_sql, insert_keyed_returning
from core.identity import KEY_STILL_VALID, StationKey
from core.queue import Dispatcher, JobRequest, enqueue_after_commit
from remote_sensing.models import Event, EventKey, claim_shard
from schemas.common import not_in_future, refuse_unstorable
from schemas.compiled import compile_check
from schemas.events import EventIn

RECEIVED, DUPLICATE, CONFLICT, INVALID = "received", "duplicate", "conflict", "invalid"
JUDGE_JOB = "workers.jobs.judge_pending"

_schema = EventIn()
_certainly_valid = compile_check(EventIn)  # the common case without marshmallow's cost


def body_hash(body: Any) -> str:
    """Hash of the body's meaning, not its bytes: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Outcome:
    event_id: Any
    status: str
    id: int | None = None
    errors: dict[str, Any] | None = field(default=None)


def validate_event(body: Any, future_tolerance_s: int, *, text_checked: bool = False) -> dict[str, Any]:
    """The loaded event, or ValidationError with marshmallow's field -> messages shape.

    `text_checked`: the caller knows that no string in `body` holds NUL or a lone surrogate."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["an event must be a JSON object"]})
    if not text_checked:
        refuse_unstorable(body)
    if _certainly_valid(body):
        data = {"event_id": body["event_id"], "measured_at": datetime.fromisoformat(body["measured_at"])}
    else:
        data = _schema.load(body)
    not_in_future(data["measured_at"], future_tolerance_s, "measured_at")
    return data


def _row(station_id: int, body: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "event_id": data["event_id"],
        "body_hash": body_hash(body),
        "payload": body,
        "measured_at": data["measured_at"],
        "status": RECEIVED,
        "claim_shard": claim_shard(body),
    }


_KEY = ["station_id", "event_id"]
_RETURNING = ["id", "event_id"]
# A stored event by its key; the join names the partition (measured_at).
_STORED_OF = select(EventKey.event_id, EventKey.id, Event.body_hash).join(
    Event, (Event.id == EventKey.id) & (Event.measured_at == EventKey.measured_at))


class Store(Protocol):
    def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """(id, event_id) of the rows inserted; rows whose key exists are skipped."""
        ...

    def stored(self, station_id: int, event_ids: list[str]) -> dict[str, tuple[int, str]]:
        """event_id -> (id, body_hash) of stored events."""
        ...

    def finish(self, job: JobRequest | None) -> None:
        """Make the inserted rows durable, then hand `job` over."""
        ...


class SessionStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        return [(pk, event_id) for pk, event_id in insert_keyed_returning(
            self.session, EventKey.__table__, Event.__table__, rows, _KEY, _RETURNING)]

    def stored(self, station_id: int, event_ids: list[str]) -> dict[str, tuple[int, str]]:
        query = _STORED_OF.where(EventKey.station_id == station_id, EventKey.event_id.in_(event_ids))
        return {event_id: (pk, digest) for event_id, pk, digest in self.session.execute(query)}

    def finish(self, job: JobRequest | None) -> None:
        if job:
            enqueue_after_commit(self.session, job.path, *job.args, job_id=job.job_id, coalesce=job.coalesce)
        self.session.commit()


_STORED = _STORED_OF.where(
    EventKey.station_id == bindparam("station_id"),
    EventKey.event_id == any_(bindparam("event_ids", type_=ARRAY(String))),
)


class DriverStore:
    """PostgreSQL, a psycopg connection in autocommit: each statement commits by itself (the
    insert is one statement whatever the number of rows).

    With `unconfirmed` credentials (the station was not read for this request), the insert
    happens only while the station still has them; when it inserts nothing, `confirm`
    authenticates the request on the station as stored (raising 401/403 when that fails) and
    the insert is made again without the condition."""

    def __init__(
        self, conn: Any, dispatcher: Dispatcher,
        unconfirmed: StationKey | None = None, confirm: Callable[[], object] | None = None,
    ) -> None:
        if unconfirmed is not None and confirm is None:
            raise ValueError("credentials accepted unconfirmed need a way to confirm them")
        self.conn = conn
        self.dispatcher = dispatcher
        self.unconfirmed = unconfirmed
        self.confirm = confirm

    def insert(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        if self.unconfirmed is None or self.confirm is None:
            return driver_insert_keyed_returning(self.conn, EventKey.__table__, Event.__table__, rows, _KEY, _RETURNING)
        inserted = driver_insert_keyed_returning(
            self.conn, EventKey.__table__, Event.__table__, rows, _KEY, _RETURNING,
            where=KEY_STILL_VALID, params={"key_id": self.unconfirmed.key_id, "sealed": self.unconfirmed.sealed},
        )
        if inserted:  # the condition held, so whatever was not inserted is stored already
            return inserted
        self.confirm()
        self.unconfirmed = None
        return self.insert(rows)

    def stored(self, station_id: int, event_ids: list[str]) -> dict[str, tuple[int, str]]:
        cursor = self.conn.execute(driver_sql(_STORED), {"station_id": station_id, "event_ids": event_ids})
        return {event_id: (pk, digest) for event_id, pk, digest in cursor}

    def finish(self, job: JobRequest | None) -> None:
        if job:
            self.dispatcher.dispatch([job])


def ingest(
    store: Store, station_id: int, bodies: list[Any], future_tolerance_s: int, *, text_checked: bool = False
) -> list[Outcome]:
    """Store the valid events of `bodies`, answer each in request order, and commit.

    `text_checked` as for `validate_event`, for all of `bodies`."""
    outcomes: list[Outcome] = []
    hashes: list[str | None] = []
    rows: dict[str, dict[str, Any]] = {}
    for body in bodies:
        try:
            data = validate_event(body, future_tolerance_s, text_checked=text_checked)
        except ValidationError as err:
            event_id = body.get("event_id") if isinstance(body, dict) else None
            messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
            outcomes.append(Outcome(event_id, INVALID, errors=messages))
            hashes.append(None)
            continue
        row = _row(station_id, body, data)
        outcomes.append(Outcome(row["event_id"], RECEIVED))
        hashes.append(row["body_hash"])
        rows.setdefault(row["event_id"], row)  # within a batch the first occurrence is stored
    if not rows:
        return outcomes

    # One statement in the common case: only replays need a second look.
    inserted = {event_id: (pk, rows[event_id]["body_hash"]) for pk, event_id in store.insert(list(rows.values()))}
    replayed = [e for e in rows if e not in inserted]
    stored = {**(store.stored(station_id, replayed) if replayed else {}), **inserted}

    answered: set[str] = set()
    for outcome, digest in zip(outcomes, hashes, strict=True):
        if outcome.status == INVALID:
            continue
        pk, stored_digest = stored[outcome.event_id]
        outcome.id = pk
        if stored_digest != digest:
            outcome.status = CONFLICT
        elif outcome.event_id not in inserted or outcome.event_id in answered:
            outcome.status = DUPLICATE
        answered.add(outcome.event_id)

    first = min((pk for pk, _ in inserted.values()), default=None)
    store.finish(JobRequest(JUDGE_JOB, job_id=f"judge-{first}", coalesce="judge") if first is not None else None)
    return outcomes
