"""Taking station events in: validate, store exactly once, then hand them to the judge.

`event_id` is the idempotency key per station: the same body again is a duplicate (the
stored id is answered), a different body under the same id is a conflict and changes
nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import insert_ignore_returning
from core.queue import enqueue_after_commit
from remote_sensing.models import Event
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


def validate_event(body: Any, future_tolerance_s: int) -> dict[str, Any]:
    """The loaded event, or ValidationError with marshmallow's field -> messages shape."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["an event must be a JSON object"]})
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
    }


def _stored(session: Session, station_id: int, event_ids: list[str]) -> dict[str, tuple[int, str]]:
    if not event_ids:
        return {}
    query = select(Event.event_id, Event.id, Event.body_hash).where(
        Event.station_id == station_id, Event.event_id.in_(event_ids)
    )
    return {event_id: (pk, digest) for event_id, pk, digest in session.execute(query)}


def ingest(session: Session, station_id: int, bodies: list[Any], future_tolerance_s: int) -> list[Outcome]:
    """Store the valid events of `bodies`, answer each in request order, and commit."""
    outcomes: list[Outcome] = []
    hashes: list[str | None] = []
    rows: dict[str, dict[str, Any]] = {}
    for body in bodies:
        try:
            data = validate_event(body, future_tolerance_s)
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
    inserted = {
        event_id: (pk, rows[event_id]["body_hash"])
        for pk, event_id in insert_ignore_returning(
            session, Event.__table__, list(rows.values()), ["station_id", "event_id"], [Event.id, Event.event_id]
        )
    }
    stored = {**_stored(session, station_id, [e for e in rows if e not in inserted]), **inserted}

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

    if inserted:
        first = min(pk for pk, _ in inserted.values())
        enqueue_after_commit(session, JUDGE_JOB, job_id=f"judge-{first}", coalesce="judge")
    session.commit()
    return outcomes
