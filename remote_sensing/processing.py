"""The judge: turns stored events into verdicts, a micro-batch per transaction.

For each event: match the plate to the registry (creating a provisional vehicle for an
unknown well-formed plate), check validity, apply the limits of the vehicle's fuel, and
fold the judgement rule over the vehicle's timeline in measurement order: after its latest
stored item from the stored state, and for a late item (or a run reset) by a bounded replay
of what follows it (`judgement.rejudge`), whose changed decisions become revisions. The
caller commits the batch together with the consequences (violations recorded, reinstated or
withdrawn) in one transaction. docs/judgement.md tells the whole story.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from core import audit, plates
from core.db import insert_ignore, is_postgres, update_many, upsert, utcnow
from core.errors import Unprocessable
from core.identity import Interval, Station, station_calibrated, suspended_at, suspensions_of
from core.registry import Vehicle, lock_vehicles
from core.settings import Policy
from remote_sensing import counts, judgement, limits, tested, validity
from remote_sensing.models import (
    JUDGE_SHARDS,
    PROCESSED,
    RECEIVED,
    Event,
    PolicyRecord,
    RunReset,
    VehicleRuns,
    VerdictRevision,
)

# An event's row is found by its id and the month it lives in (rs_events' partitions).
_EVENT_KEY = ("id", "measured_at")
# The verdict columns of rs_events, written by the judge in one statement per batch.
VERDICT_COLUMNS = (
    "status", "processed_at", "valid", "reasons", "verdict", "exceeded", "fuel_type", "plate_read", "plate_match",
    "vehicle_id", "runs", "judged", "warnings", "limits", "policy_digest", "violation_id",
)


@dataclass(slots=True, eq=False)
class EventRow:
    """An event as the judge reads and writes it: plain values, no ORM unit of work.

    A batch touches hundreds of events; as ORM entities each verdict cost ~15 instrumented
    attribute sets and its own flushed UPDATE. As rows they are written back together.
    """

    id: int
    station_id: int
    measured_at: datetime
    payload: dict[str, Any]
    status: str = RECEIVED
    processed_at: datetime | None = None
    valid: bool | None = None
    reasons: list[str] | None = None
    verdict: str | None = None
    exceeded: list[str] | None = None
    fuel_type: str | None = None
    plate_read: str | None = None
    plate_match: str | None = None
    vehicle_id: int | None = None
    runs: dict[str, Any] | None = None
    judged: list[str] | None = None
    warnings: list[str] | None = None
    limits: dict[str, float] | None = None
    policy_digest: str | None = None
    violation_id: int | None = None

    def verdict_values(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in VERDICT_COLUMNS}
        return {"id": self.id, "measured_at": self.measured_at, **values}


@dataclass(frozen=True)
class ResetRow:
    id: int
    vehicle_id: int
    at: datetime
    cause: str


@dataclass
class Revision:
    """A re-judgement of a stored event, filled with violation ids by the enforcement floor."""

    event_id: int
    rev: int
    cause_event: int | None
    cause_reset: int | None
    judged: list[str]
    warnings: list[str]
    vehicle: Vehicle
    was_judged: bool  # the decision it supersedes judged a violation
    violation_ids: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Judged:
    """An event whose measurement now completes a run: the enforcement floor records (or
    reinstates) its violation. `events` are the run's event ids in measurement order;
    `revision` is set when a replay (not the first verdict) judged it."""

    event_id: int
    measured_at: datetime
    vehicle: Vehicle
    pollutants: list[str]
    events: list[int]
    revision: Revision | None


@dataclass
class Batch:
    """What one transaction of the judge decided: the claimed events' first verdicts, the
    run states a replay rewrote (`replayed`, a projection), the runs now completed, the
    revisions of stored events, the claimed resets and each vehicle's latest state."""

    events: dict[int, EventRow]
    judged: list[Judged]
    revisions: list[Revision]
    replayed: dict[int, tuple[datetime, dict[str, Any]]]  # event id -> (measured_at, runs)
    resets: list[int]
    latest: dict[int, dict[str, Any]]
    policy_digest: str
    tested: list[dict[str, Any]]  # rs_tested_months rows of the first verdicts

    def withdrawals(self) -> list[Revision]:
        """Revisions of events that judged a violation and no longer do."""
        return [r for r in self.revisions if r.was_judged and not r.judged]


_EVENT_COLUMNS = (Event.id, Event.station_id, Event.measured_at, Event.payload)
_WAITING = select(*_EVENT_COLUMNS).where(Event.status == RECEIVED)
# The statements name the status literally, so every plan (generic ones too) reads the
# partial indexes of waiting events. Claim shards are held with advisory locks in their own
# space until the claiming transaction ends.
_SHARD_LOCKS = 0x4C4A
_BACKLOG = text("SELECT count(*) FROM (SELECT 1 FROM rs_events WHERE status = 'received' AND id > :floor "
                "ORDER BY id LIMIT :n) w")
# The oldest waiting events of the shards no other transaction holds, holding each one met.
_CLAIM_OLDEST = text(
    "SELECT id, station_id, measured_at, payload FROM rs_events "
    "WHERE status = 'received' AND id > :floor "
    "AND pg_try_advisory_xact_lock(CAST(:space AS integer), CAST(claim_shard AS integer)) "
    "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
).columns(*_EVENT_COLUMNS)
# One shard's oldest waiting events, if no other transaction holds it (the lock is taken
# once, in the sub-select).
_CLAIM_SHARD = text(
    "SELECT id, station_id, measured_at, payload FROM rs_events "
    "WHERE status = 'received' AND claim_shard = :shard AND id > :floor "
    "AND (SELECT pg_try_advisory_xact_lock(CAST(:space AS integer), CAST(:shard AS integer))) "
    "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
).columns(*_EVENT_COLUMNS)


# How far below the highest id it claimed a drain's next claim starts (ids are handed out
# before their events commit, so a lower one may still become visible), and how often it
# reads the waiting events' indexes from the start again (what commits later than that).
FLOOR_MARGIN = 2000
RESCAN_S = 5.0


@dataclass
class ClaimFloors:
    """Where one drain's claims start in the waiting events' partial indexes.

    Judging an event leaves a dead entry in them until the month's partition is vacuumed,
    and a claim reading from the start walks every one (measured: 90 index entries read per
    judged event on a fresh table, 240 after 100,000 verdicts, with no autovacuum between).
    A drain instead starts each claim `FLOOR_MARGIN` ids below the highest it claimed
    there, from the start every `RESCAN_S` seconds, and from the start before it finds
    nothing: an event committed later than that below a floor waits for the rescan at most.
    """

    shards: dict[int, int] = field(default_factory=dict)
    oldest: int = 0
    since: float = field(default_factory=time.monotonic)

    def rescan_due(self, now: bool = False) -> bool:
        """Back to the start if it is time (or `now`); whether anything was above it."""
        moved = bool(self.shards) or self.oldest > 0
        if now or time.monotonic() - self.since > RESCAN_S:
            self.shards.clear()
            self.oldest, self.since = 0, time.monotonic()
            return moved
        return False

    def passed(self, shard: int | None, rows: Sequence[EventRow]) -> None:
        if not rows:
            return
        top = max(row.id for row in rows) - FLOOR_MARGIN
        if shard is None:
            self.oldest = max(self.oldest, top)
        else:
            self.shards[shard] = max(self.shards.get(shard, 0), top)
            if len(self.shards) == JUDGE_SHARDS:  # nothing waits below every shard's floor
                self.oldest = max(self.oldest, min(self.shards.values()))


def claim_pending(session: Session, limit: int, floors: ClaimFloors | None = None) -> list[EventRow]:
    """Lock up to `limit` waiting events (above `floors`, one drain's, if given).

    On PostgreSQL a judge claims whole shards of plates (JUDGE_SHARDS, by the plate as
    read), each held until its transaction ends, so a concurrent judge claims other shards,
    other plates, and rarely waits for a vehicle lock this one holds. With a backlog of a
    batch or more it takes shards one by one from a random one, each read from an index range
    of its own (the claim's cost does not grow with the backlog); a smaller backlog it takes
    whole, oldest first, in one statement (the shards of what it takes are then its own).
    SQLite has one writer: the oldest events, in order.
    """
    if not is_postgres(session):
        return [EventRow(*row) for row in session.execute(_WAITING.order_by(Event.id).limit(limit))]
    floors = floors or ClaimFloors()
    floors.rescan_due()
    rows = _claim(session, limit, floors)
    if not rows and floors.rescan_due(now=True):  # "nothing left" is only said from the start
        rows = _claim(session, limit, floors)
    return rows


def _claim(session: Session, limit: int, floors: ClaimFloors) -> list[EventRow]:
    if session.scalar(_BACKLOG, {"n": limit, "floor": floors.oldest}) < limit:
        rows = [EventRow(*row) for row in session.execute(
            _CLAIM_OLDEST, {"space": _SHARD_LOCKS, "n": limit, "floor": floors.oldest})]
        floors.passed(None, rows)
        return rows
    rows = []
    start = random.randrange(JUDGE_SHARDS)
    for k in range(JUDGE_SHARDS):
        shard = (start + k) % JUDGE_SHARDS
        found = [EventRow(*row) for row in session.execute(_CLAIM_SHARD, {
            "space": _SHARD_LOCKS, "shard": shard, "n": limit - len(rows), "floor": floors.shards.get(shard, 0)})]
        floors.passed(shard, found)
        rows += found
        if len(rows) >= limit:
            break
    return rows


def ensure_policy(session: Session, policy: Policy) -> str:
    insert_ignore(
        session, PolicyRecord.__table__,
        [{"digest": policy.digest, "version": policy.version, "body": policy.as_record(), "first_used_at": utcnow()}],
        ["digest"],
    )
    return policy.digest


@dataclass(frozen=True)
class StationWindow:
    """A station as validity sees it: its calibration window and its suspension intervals."""

    station: Station
    suspensions: Sequence[Interval]

    @property
    def region(self) -> str:
        return self.station.region

    def calibrated(self, at: datetime, tz: ZoneInfo) -> bool:
        return station_calibrated(self.station, at.astimezone(tz).date())

    def suspended(self, at: datetime) -> bool:
        return suspended_at(self.suspensions, at)


def station_windows(session: Session, station_ids: set[int]) -> dict[int, StationWindow]:
    suspensions = suspensions_of(session, station_ids)
    return {s.id: StationWindow(s, suspensions.get(s.id, []))
            for s in session.scalars(select(Station).where(Station.id.in_(station_ids)))}


@dataclass(frozen=True)
class PlateMatch:
    read: str | None  # the cleaned, readable plate, or None when unreadable
    match: str  # exact | fuzzy | none
    vehicle: Vehicle | None
    ambiguous: bool = False  # readable, but several registered plates fit: no vehicle is charged


@dataclass(frozen=True)
class PlateRead:
    raw: str
    color: str
    trusted: bool  # confident enough to create a provisional vehicle
    region: str  # where an unknown vehicle was seen: it belongs there until registered


def match_plates(session: Session, reads: Sequence[PlateRead]) -> list[PlateMatch]:
    """Registry lookups for a batch of reads in one query (plus one for new provisional vehicles).

    `exact` means the cleaned plate as read is registered; a read that needed an OCR
    repair (苏B1234O) can only match `fuzzy`, and only when one registered plate fits. A
    trusted, readable read that no registered plate fits creates a provisional vehicle;
    one that several fit belongs to no vehicle (DOMAIN.md section 7, "Plates").
    """
    cleaned = [plates.clean_plate(r.raw) for r in reads]
    # A plate whose form its colour contradicts is as unreadable as a malformed one.
    readable = [
        p if p is not None and plates.fits_color(p, r.color) else None
        for r, p in zip(reads, (plates.readable_plate(c) for c in cleaned), strict=True)
    ]
    keys = {(r.color, plates.confusion_key(p)) for r, p in zip(reads, readable, strict=True) if p is not None}
    by_key: dict[tuple[str, str], dict[str, Vehicle]] = {}
    if keys:
        query = select(Vehicle).where(tuple_(Vehicle.plate_color, Vehicle.plate_key).in_(sorted(keys)))
        for vehicle in session.scalars(query):
            by_key.setdefault((vehicle.plate_color, vehicle.plate_key), {})[vehicle.plate] = vehicle

    decided: list[tuple[str | None, str, Vehicle | None, bool]] = []  # plate, kind, vehicle, ambiguous
    provisional: dict[tuple[str, str], dict[str, Any]] = {}
    for read, clean, plate in zip(reads, cleaned, readable, strict=True):
        if plate is None:
            decided.append((None, "none", None, False))
            continue
        known = by_key.get((read.color, plates.confusion_key(plate)), {})
        kind, target = plates.decide_identity(clean, plate, {p: v.registered for p, v in known.items()})
        if target is None:
            # Ambiguous: filed under none of the registered plates that fit, nor under a
            # provisional twin of theirs; the event is stored and enforces nothing.
            decided.append((plate, kind, None, True))
            continue
        vehicle = known.get(target)
        if vehicle is None and read.trusted:
            provisional.setdefault((plate, read.color), provisional_row(plate, read.color, read.region))
        decided.append((plate, kind, vehicle, False))

    created: dict[tuple[str, str], Vehicle] = {}
    if provisional:
        insert_ignore(session, Vehicle.__table__, list(provisional.values()), ["plate", "plate_color"])
        query = select(Vehicle).where(tuple_(Vehicle.plate, Vehicle.plate_color).in_(sorted(provisional)))
        created = {(v.plate, v.plate_color): v for v in session.scalars(query)}
    return [
        PlateMatch(plate, kind, vehicle or (created.get((plate, read.color)) if plate and not ambiguous else None),
                   ambiguous)
        for read, (plate, kind, vehicle, ambiguous) in zip(reads, decided, strict=True)
    ]


def provisional_row(plate: str, color: str, region: str) -> dict[str, Any]:
    """A vehicle seen but not registered: it belongs where it was seen until it is registered."""
    now = utcnow()
    return {"plate": plate, "plate_color": color, "plate_key": plates.confusion_key(plate), "registered": False,
            "region": region, "created_at": now, "updated_at": now}


def vehicle_read_by_person(session: Session, raw: str, color: str, region: str) -> Vehicle:
    """The vehicle of a plate a person read off an image or a document (a review, a correction).

    A person's reading is matched exactly, never through OCR confusions: it must be well
    formed as given and fit its colour (else 422 `plate_unreadable`). An unknown plate gets a
    provisional vehicle, unless registered plates of that colour differ from it only by
    confusable characters: then the reading is a guess between vehicles (422 `plate_ambiguous`).
    """
    plate = plates.clean_plate(raw)
    if not plates.is_well_formed(plate) or not plates.fits_color(plate, color):
        raise Unprocessable(
            f"{raw!r} ({color}) is not a well-formed plate of that colour", code="plate_unreadable",
            fields={"plate": ["must be a well-formed plate (GA 36-2018) whose form fits plate_color"]},
        )
    vehicle = session.scalar(select(Vehicle).where(Vehicle.plate == plate, Vehicle.plate_color == color))
    if vehicle is not None:
        return vehicle
    twins = sorted(session.scalars(select(Vehicle.plate).where(
        Vehicle.plate_color == color, Vehicle.plate_key == plates.confusion_key(plate), Vehicle.registered.is_(True))))
    if twins:
        raise Unprocessable(
            f"{plate} is not registered, and registered plates differ from it only by characters OCR confuses",
            code="plate_ambiguous", fields={"plate": [f"not registered; did you mean one of {', '.join(twins)}?"]},
        )
    insert_ignore(session, Vehicle.__table__, [provisional_row(plate, color, region)], ["plate", "plate_color"])
    return session.scalars(select(Vehicle).where(Vehicle.plate == plate, Vehicle.plate_color == color)).one()


def match_plate(session: Session, raw: str, color: str, trusted: bool, region: str) -> PlateMatch:
    return match_plates(session, [PlateRead(raw, color, trusted, region)])[0]


def judge_events(
    session: Session, events: list[EventRow], policy: Policy, tz: ZoneInfo, resets: Sequence[ResetRow] = (),
) -> Batch:
    """Verdicts for a claimed batch (and the claimed run resets), in measurement order per vehicle.

    The verdicts stay in memory until `save_verdicts`, so the violations the batch makes
    can be linked to their events before the one write.
    """
    digest = ensure_policy(session, policy)
    stations = station_windows(session, {e.station_id for e in events})
    reads = [
        PlateRead(e.payload["plate"]["number"], e.payload["plate"]["color"],
                  e.payload["plate"]["confidence"] >= policy.plate_confidence_min, stations[e.station_id].region)
        for e in events
    ]
    matches = dict(zip((e.id for e in events), match_plates(session, reads), strict=True))
    vehicle_ids = {m.vehicle.id for m in matches.values() if m.vehicle is not None} | {r.vehicle_id for r in resets}
    lock_vehicles(session, vehicle_ids)
    vehicles = {v.id: v for v in session.scalars(select(Vehicle).where(Vehicle.id.in_(vehicle_ids)))}
    new_items: dict[int, list[judgement.Item]] = {}
    for event in events:
        event.policy_digest = digest
        vehicle = _apply_verdict(event, stations[event.station_id], matches[event.id], policy, tz)
        if vehicle is not None:
            new_items.setdefault(vehicle.id, []).append(_measurement(event))
    for reset in resets:
        new_items.setdefault(reset.vehicle_id, []).append(
            judgement.Reset(reset.at, reset.id, ends_runs=reset.cause != EVIDENCE_MOVED))
    batch = Batch({e.id: e for e in events}, [], [], {}, [r.id for r in resets], {}, digest,
                  tested.rows(events, {sid: window.region for sid, window in stations.items()}, tz))
    latest = _latest_states(session, set(new_items))
    for vehicle_id in sorted(new_items):
        _Timeline(session, batch, vehicles[vehicle_id], latest.get(vehicle_id), policy, tz).judge(new_items[vehicle_id])
    return batch


def save_verdicts(session: Session, batch: Batch) -> None:
    """Write the batch back: first verdicts, the replayed run-state projection, revisions, resets."""
    update_many(session, Event.__table__, [event.verdict_values() for event in batch.events.values()], _EVENT_KEY)
    counts.add(session, batch.events.values())  # the statistics', with the verdicts they count
    tested.add(session, batch.tested)
    update_many(session, Event.__table__, [{"id": pk, "measured_at": at, "runs": runs}
                                           for pk, (at, runs) in sorted(batch.replayed.items())], _EVENT_KEY)
    upsert(session, VehicleRuns.__table__, list(batch.latest.values()), ["vehicle_id"])
    if batch.revisions:
        session.execute(insert(VerdictRevision.__table__), [{
            "event_id": r.event_id, "rev": r.rev, "at": utcnow(), "cause_event": r.cause_event,
            "cause_reset": r.cause_reset, "judged": r.judged, "warnings": r.warnings,
            "violation_ids": r.violation_ids, "withdrawn": r.withdrawn, "policy_digest": batch.policy_digest,
        } for r in batch.revisions])
        for r in batch.revisions:
            audit.append(
                session, actor="system:judge", action="verdict.revised", subject_type="rs_event", subject_id=r.event_id,
                data={"rev": r.rev, "cause_event": r.cause_event, "cause_reset": r.cause_reset, "judged": r.judged,
                      "warnings": r.warnings, "violation_ids": r.violation_ids, "withdrawn": r.withdrawn,
                      "policy": batch.policy_digest},
            )
    if batch.resets:
        session.execute(update(RunReset).where(RunReset.id.in_(batch.resets)).values(status=PROCESSED))


def claim_resets(session: Session, limit: int) -> list[ResetRow]:
    """Lock up to `limit` run resets waiting for the judge, like `claim_pending`."""
    query = (
        select(RunReset.id, RunReset.vehicle_id, RunReset.at, RunReset.cause)
        .where(RunReset.status == RECEIVED).order_by(RunReset.id).limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return [ResetRow(*row) for row in session.execute(query)]


def record_reset(session: Session, vehicle_id: int, at: datetime, *, cause: str, case_id: int | None) -> RunReset:
    """A verified repair ends every run of the vehicle at `at`; the judge replays what follows."""
    reset = RunReset(vehicle_id=vehicle_id, at=at, cause=cause, case_id=case_id, status=RECEIVED)
    session.add(reset)
    session.flush()
    return reset


# The cause of a run reset that ends no run: a correction took a violation's measurements
# out of the vehicle's timeline, and the judge re-judges what follows without them.
EVIDENCE_MOVED = "evidence_moved"


def set_aside(session: Session, event_ids: Sequence[int], vehicle_id: int) -> list[int]:
    """Take the events (those in the vehicle's timeline) out of it for good; answers their ids.

    A person moved the violation they ground to another vehicle: no replay may judge, revise
    or withdraw on them again. Their run state (a projection) is cleared, which keeps them out
    of every timeline; their first verdicts (the plate as read, its match) stay as recorded.
    The vehicle's later items are re-judged without them by the judge, from a run reset that
    ends no run (`EVIDENCE_MOVED`); its latest state, if one of them was the latest item, goes
    back to the item before it. The caller commits and queues the judge.
    """
    moved = sorted(session.scalars(
        update(Event).where(Event.id.in_(sorted(event_ids)), Event.vehicle_id == vehicle_id, Event.runs.is_not(None))
        .values(runs=None).returning(Event.id)))
    if not moved:
        return []
    first = session.scalar(select(func.min(Event.measured_at)).where(Event.id.in_(moved)))
    latest = session.get(VehicleRuns, vehicle_id)
    if latest is not None and latest.event_id in moved:
        key = (latest.measured_at, latest.event_id)
        conn = session.connection()
        event = conn.execute(_BEFORE, {"vehicle_id": vehicle_id, "at": key[0], "pk": key[1]}).first()
        reset = max((at for _pk, at in conn.execute(_RESETS, {"vehicle_id": vehicle_id}) if (at, 0) < key),
                    default=None)
        if reset is not None and (event is None or (reset, 0) > (event.measured_at, event.id)):
            latest.measured_at, latest.event_id, latest.runs = reset, 0, {}
        elif event is not None:
            latest.measured_at, latest.event_id, latest.runs = event.measured_at, event.id, event.runs
        else:
            session.delete(latest)
    record_reset(session, vehicle_id, first, cause=EVIDENCE_MOVED, case_id=None)
    return moved


def _measurement(event: EventRow) -> judgement.Measurement:
    measured = limits.measured_of(event.limits or {}, event.payload["measurements"])
    return judgement.Measurement(event.measured_at, event.id, frozenset(measured), frozenset(event.exceeded or []))


def _latest_states(session: Session, vehicle_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not vehicle_ids:
        return {}
    rows = session.execute(
        select(VehicleRuns.vehicle_id, VehicleRuns.measured_at, VehicleRuns.event_id, VehicleRuns.runs)
        .where(VehicleRuns.vehicle_id.in_(vehicle_ids))
    )
    return {vid: {"vehicle_id": vid, "measured_at": at, "event_id": eid, "runs": runs} for vid, at, eid, runs in rows}


# Stored events read per query while a replay has not converged: most converge at the first.
REPLAY_PAGES = (4, 32, 256, 1000)


class _Timeline:
    """Folds a vehicle's new items into its stored timeline in measurement order.

    New items after the stored latest one take the fast path (the latest state is one
    primary-key read). A late one replays from the stored state just before it and stops
    at the first later stored item whose recomputed state equals its stored one, once no
    new item is left: from there on every verdict would be what is stored (convergence).
    """

    def __init__(self, session: Session, batch: Batch, vehicle: Vehicle, latest: dict[str, Any] | None,
                 policy: Policy, tz: ZoneInfo) -> None:
        self.session, self.batch, self.vehicle, self.latest = session, batch, vehicle, latest
        self.policy, self.tz = policy, tz
        self.resets: list[judgement.Reset] | None = None

    def judge(self, items: list[judgement.Item]) -> None:
        latest_key = (self.latest["measured_at"], self.latest["event_id"]) if self.latest else None
        last: judgement.Outcome | None = None
        for last in judgement.rejudge(items, self._seek, self.policy, self.tz):
            if last.stored is None:
                self._first_verdict(last.item, last.judgement)
                continue
            if last.judgement.runs != last.stored.runs and isinstance(last.item, judgement.Measurement):
                self.batch.replayed[last.item.id] = (last.item.at, last.judgement.runs)
            self._revise(last.stored, last.judgement, last.cause)
        assert last is not None
        if latest_key is None or last.item.key >= latest_key:
            self.batch.latest[self.vehicle.id] = {"vehicle_id": self.vehicle.id, "measured_at": last.item.at,
                                                 "event_id": last.item.key[1], "runs": last.judgement.runs}

    def _seek(self, key: tuple[datetime, int, int]) -> tuple[dict[str, Any] | None, Iterator[judgement.Stored]]:
        """After the stored latest item: its state, one primary-key read; before it, the history."""
        at, pk, _ = key
        if self.latest is None or (at, pk) > (self.latest["measured_at"], self.latest["event_id"]):
            return (self.latest["runs"] if self.latest else None), iter(())
        return self._state_before((at, pk)), self._stored_after((at, pk))

    def _first_verdict(self, item: judgement.Item, result: judgement.Judgement) -> None:
        if not isinstance(item, judgement.Measurement):
            return
        event = self.batch.events[item.id]
        event.runs, event.judged, event.warnings = result.runs, result.judged, result.warnings
        if result.judged:
            self.batch.judged.append(Judged(event.id, event.measured_at, self.vehicle, result.judged,
                                            result.events, None))

    def _revise(self, stored: judgement.Stored, result: judgement.Judgement, cause: judgement.Item | None) -> None:
        if not isinstance(stored.item, judgement.Measurement):
            return
        if (result.judged, result.warnings) == (stored.judged, stored.warnings):
            return
        revision = Revision(
            event_id=stored.item.id, rev=stored.revisions + 1,
            cause_event=cause.id if isinstance(cause, judgement.Measurement) else None,
            cause_reset=cause.id if isinstance(cause, judgement.Reset) else None,
            judged=result.judged, warnings=result.warnings, vehicle=self.vehicle, was_judged=bool(stored.judged),
        )
        self.batch.revisions.append(revision)
        if result.judged and not stored.judged:
            self.batch.judged.append(Judged(stored.item.id, stored.item.at, self.vehicle, result.judged,
                                            result.events, revision))

    def _state_before(self, key: tuple[datetime, int]) -> dict[str, Any] | None:
        """The stored state after the vehicle's last timeline item before `key`."""
        at, pk = key
        event = self.session.connection().execute(_BEFORE, {"vehicle_id": self.vehicle.id, "at": at, "pk": pk}).first()
        reset = max((r for r in self._resets() if (r.at, 0) < key), key=lambda r: r.key, default=None)
        if reset is not None and (event is None or reset.key > (event.measured_at, event.id)):
            return {}
        return event.runs if event is not None else None

    def _resets(self) -> list[judgement.Reset]:
        """The vehicle's judged run resets (a handful: one per verified repair), read once."""
        if self.resets is None:
            self.resets = [judgement.Reset(at, pk) for pk, at in
                           self.session.connection().execute(_RESETS, {"vehicle_id": self.vehicle.id})]
        return self.resets

    def _stored_after(self, key: tuple[datetime, int]) -> Iterator[judgement.Stored]:
        """The vehicle's stored timeline after `key`, in measurement order, read page by page."""
        resets = [judgement.Stored(r, {}, [], [], 0) for r in self._resets() if r.key > key]
        events = self._stored_events(*key)
        next_event = next(events, None)
        while resets or next_event is not None:
            if resets and (next_event is None or
                           judgement.order_key(resets[0].item) < judgement.order_key(next_event.item)):
                yield resets.pop(0)
            else:
                assert next_event is not None
                yield next_event
                next_event = next(events, None)

    def _stored_events(self, at: datetime, pk: int) -> Iterator[judgement.Stored]:
        for page in itertools.chain(REPLAY_PAGES, itertools.repeat(REPLAY_PAGES[-1])):
            rows = self.session.connection().execute(_AFTER, {"vehicle_id": self.vehicle.id, "at": at, "pk": pk,
                                                 "page": page}).all()
            if not rows:
                return
            revised = _latest_revisions(self.session, [r.id for r in rows])
            for r in rows:
                judged, warnings, count = revised.get(r.id, (r.judged or [], r.warnings or [], 0))
                measured = limits.measured_of(r.limits or {}, r.payload["measurements"])
                item = judgement.Measurement(r.measured_at, r.id, frozenset(measured), frozenset(r.exceeded or []))
                yield judgement.Stored(item, r.runs, judged, warnings, count)
            at, pk = rows[-1].measured_at, rows[-1].id


# The replay's statements, built once (building one took about as long as running it) and run
# on the connection: Core rows skip the ORM's per-statement layer.
_TIMELINE = (Event.vehicle_id == bindparam("vehicle_id"), Event.status == PROCESSED, Event.runs.is_not(None))
_AT, _PK = bindparam("at", type_=Event.measured_at.type), bindparam("pk")
_BEFORE = (
    select(Event.measured_at, Event.id, Event.runs)
    .where(*_TIMELINE, Event.measured_at <= _AT,  # the range the (vehicle_id, measured_at) index seeks
           or_(Event.measured_at < _AT, and_(Event.measured_at == _AT, Event.id < _PK)))
    .order_by(Event.measured_at.desc(), Event.id.desc()).limit(1)
)
_AFTER = (
    select(Event.id, Event.measured_at, Event.payload, Event.limits, Event.exceeded, Event.runs, Event.judged,
           Event.warnings)
    .where(*_TIMELINE, Event.measured_at >= _AT,
           or_(Event.measured_at > _AT, and_(Event.measured_at == _AT, Event.id > _PK)))
    .order_by(Event.measured_at, Event.id).limit(bindparam("page"))
)
_RESETS = (
    select(RunReset.id, RunReset.at)
    .where(RunReset.vehicle_id == bindparam("vehicle_id"), RunReset.status == PROCESSED,
           RunReset.cause != EVIDENCE_MOVED)  # a mark of moved evidence is no item of the timeline
    .order_by(RunReset.at, RunReset.id)
)
_REVISIONS = (
    select(VerdictRevision.event_id, VerdictRevision.rev, VerdictRevision.judged, VerdictRevision.warnings)
    .where(VerdictRevision.event_id.in_(bindparam("ids", expanding=True)))
    .order_by(VerdictRevision.event_id, VerdictRevision.rev)
)


def _latest_revisions(session: Session, event_ids: list[int]) -> dict[int, tuple[list[str], list[str], int]]:
    """Each event's current decision from its latest revision, and how many it has."""
    return {event_id: (judged, warnings, rev)
            for event_id, rev, judged, warnings in session.connection().execute(_REVISIONS, {"ids": event_ids})}


def _apply_verdict(
    event: EventRow, station: StationWindow, match: PlateMatch, policy: Policy, tz: ZoneInfo
) -> Vehicle | None:
    """Validity, limits and verdict of one event; the vehicle whose runs it advances, if any."""
    body = event.payload
    vehicle = match.vehicle
    registry_fuel = vehicle.fuel_type if vehicle is not None and match.match != "none" else None
    conditions = body.get("conditions") or {}
    reading = validity.Reading(
        speed_kmh=body["speed_kmh"],
        acceleration_ms2=body["acceleration_ms2"],
        vsp_kw_t=body.get("vsp_kw_t"),
        wind_speed_ms=conditions.get("wind_speed_ms"),
        temperature_c=conditions.get("temperature_c"),
        humidity_pct=conditions.get("humidity_pct"),
        co2_pct=body["measurements"].get("co2_pct"),
        plate_confidence=body["plate"]["confidence"],
        plate_readable=match.read is not None,
        station_calibrated=station.calibrated(event.measured_at, tz),
        station_suspended=station.suspended(event.measured_at),
        vehicle_fuel=registry_fuel,
    )
    reasons = validity.validity_reasons(reading, policy)
    fuel = registry_fuel or body.get("fuel_type_observed")

    event.status = PROCESSED
    event.processed_at = utcnow()
    event.plate_read = match.read
    event.plate_match = match.match
    event.vehicle_id = vehicle.id if vehicle is not None else None
    event.valid = not reasons
    event.fuel_type = fuel
    event.limits = limits.limits_for(fuel, policy) if fuel else {}
    event.exceeded, event.judged, event.warnings = [], [], []
    if reasons:
        event.reasons, event.verdict = reasons, "invalid"
        return None
    exceeded = limits.exceeded_pollutants(fuel, body["measurements"], policy)
    if exceeded is None:
        event.reasons, event.verdict = ["fuel_type_unknown"], "invalid"
        return None
    event.reasons = []
    event.exceeded = exceeded
    event.verdict = "exceed" if exceeded else "pass"
    return vehicle
