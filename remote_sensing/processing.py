"""The judge: turns stored events into verdicts, a micro-batch per transaction.

For each event: match the plate to the registry (creating a provisional vehicle for an
unknown well-formed plate), check validity, apply the limits of the vehicle's fuel, and
advance the judgement rule from the vehicle's previous valid measurement. The caller
commits the batch together with the consequences (violations) in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core import plates
from core.db import insert_ignore, is_postgres, update_many, upsert, utcnow
from core.identity import Station, station_calibrated
from core.registry import Vehicle, lock_vehicles
from core.settings import Policy
from remote_sensing import judgement, limits, validity
from remote_sensing.models import PROCESSED, RECEIVED, Event, PolicyRecord, VehicleRuns

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
        return {"id": self.id, **{name: getattr(self, name) for name in VERDICT_COLUMNS}}


@dataclass(frozen=True)
class Judged:
    """An event whose measurement completed a run: the enforcement floor records a violation."""

    event: EventRow
    vehicle: Vehicle
    pollutants: list[str]


@dataclass
class Batch:
    """What one transaction of the judge decided: every event it wrote a verdict to (the
    claimed ones and any later ones a late upload re-judged) and the runs it completed."""

    events: dict[int, EventRow]
    judged: list[Judged]


def claim_pending(session: Session, limit: int) -> list[EventRow]:
    """Lock up to `limit` waiting events; concurrent judges skip each other's rows."""
    query = (
        select(Event.id, Event.station_id, Event.measured_at, Event.payload)
        .where(Event.status == RECEIVED).order_by(Event.id).limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return [EventRow(*row) for row in session.execute(query)]


def ensure_policy(session: Session, policy: Policy) -> str:
    insert_ignore(
        session, PolicyRecord.__table__,
        [{"digest": policy.digest, "version": policy.version, "body": policy.as_record(), "first_used_at": utcnow()}],
        ["digest"],
    )
    return policy.digest


@dataclass(frozen=True)
class PlateMatch:
    read: str | None  # the cleaned, readable plate, or None when unreadable
    match: str  # exact | fuzzy | none
    vehicle: Vehicle | None


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
    trusted, readable read of an unknown plate creates a provisional vehicle.
    """
    cleaned = [plates.clean_plate(r.raw) for r in reads]
    readable = [plates.readable_plate(c) for c in cleaned]
    keys = {(r.color, plates.confusion_key(p)) for r, p in zip(reads, readable, strict=True) if p is not None}
    by_key: dict[tuple[str, str], dict[str, Vehicle]] = {}
    if keys:
        query = select(Vehicle).where(tuple_(Vehicle.plate_color, Vehicle.plate_key).in_(sorted(keys)))
        for vehicle in session.scalars(query):
            by_key.setdefault((vehicle.plate_color, vehicle.plate_key), {})[vehicle.plate] = vehicle

    decided: list[tuple[str | None, str, Vehicle | None]] = []
    provisional: dict[tuple[str, str], dict[str, Any]] = {}
    for read, clean, plate in zip(reads, cleaned, readable, strict=True):
        if plate is None:
            decided.append((None, "none", None))
            continue
        key = plates.confusion_key(plate)
        known = by_key.get((read.color, key), {})
        exact = known.get(clean)
        registered = [p for p, v in known.items() if v.registered]
        kind, matched = plates.decide_match(clean, exact is not None and exact.registered, registered)
        vehicle = known[matched] if kind != "none" and matched is not None else known.get(plate)
        if vehicle is None and read.trusted:
            provisional.setdefault((plate, read.color), {
                "plate": plate, "plate_color": read.color, "plate_key": key, "registered": False,
                "region": read.region, "created_at": utcnow(), "updated_at": utcnow(),
            })
        decided.append((plate, kind, vehicle))

    created: dict[tuple[str, str], Vehicle] = {}
    if provisional:
        insert_ignore(session, Vehicle.__table__, list(provisional.values()), ["plate", "plate_color"])
        query = select(Vehicle).where(tuple_(Vehicle.plate, Vehicle.plate_color).in_(sorted(provisional)))
        created = {(v.plate, v.plate_color): v for v in session.scalars(query)}
    return [
        PlateMatch(plate, kind, vehicle or (created.get((plate, read.color)) if plate else None))
        for read, (plate, kind, vehicle) in zip(reads, decided, strict=True)
    ]


def match_plate(session: Session, raw: str, color: str, trusted: bool, region: str) -> PlateMatch:
    return match_plates(session, [PlateRead(raw, color, trusted, region)])[0]


def judge_events(session: Session, events: list[EventRow], policy: Policy, tz: ZoneInfo) -> Batch:
    """Verdicts for a claimed batch, in a handful of set-based statements.

    The verdicts stay in memory until `save_verdicts`, so the violations the batch makes
    can be linked to their events before the one write.
    """
    digest = ensure_policy(session, policy)
    stations = {s.id: s for s in session.scalars(select(Station).where(Station.id.in_({e.station_id for e in events})))}
    reads = [
        PlateRead(e.payload["plate"]["number"], e.payload["plate"]["color"],
                  e.payload["plate"]["confidence"] >= policy.plate_confidence_min, stations[e.station_id].region)
        for e in events
    ]
    matches = dict(zip((e.id for e in events), match_plates(session, reads), strict=True))
    vehicle_ids = {m.vehicle.id for m in matches.values() if m.vehicle is not None}
    lock_vehicles(session, vehicle_ids)
    judge = _Judge(session, RunState.load(session, vehicle_ids), policy, tz)
    for event in sorted(events, key=lambda e: (e.measured_at, e.id)):
        event.policy_digest = digest
        judge.judge(event, stations[event.station_id], matches[event.id])
    judge.state.save(session)
    return Batch(judge.events, judge.judged)


def save_verdicts(session: Session, batch: Batch) -> None:
    """Write every verdict of the batch back in one statement."""
    update_many(session, Event.__table__, [event.verdict_values() for event in batch.events.values()])


@dataclass(frozen=True)
class Latest:
    measured_at: datetime
    event_id: int
    runs: dict[str, Any]


class RunState:
    """Each vehicle's judgement state after its latest judged measurement, for one batch."""

    def __init__(self, latest: dict[int, Latest]) -> None:
        self.latest = latest
        self.touched: set[int] = set()

    @classmethod
    def load(cls, session: Session, vehicle_ids: set[int]) -> RunState:
        if not vehicle_ids:
            return cls({})
        rows = session.execute(
            select(VehicleRuns.vehicle_id, VehicleRuns.measured_at, VehicleRuns.event_id, VehicleRuns.runs)
            .where(VehicleRuns.vehicle_id.in_(vehicle_ids))
        )
        return cls({vehicle_id: Latest(*rest) for vehicle_id, *rest in rows})

    def is_latest(self, vehicle_id: int, event: EventRow) -> bool:
        last = self.latest.get(vehicle_id)
        return last is None or (event.measured_at, event.id) > (last.measured_at, last.event_id)

    def runs_of(self, vehicle_id: int) -> dict[str, Any] | None:
        last = self.latest.get(vehicle_id)
        return last.runs if last else None

    def record(self, vehicle_id: int, event: EventRow) -> None:
        self.latest[vehicle_id] = Latest(event.measured_at, event.id, event.runs or {})
        self.touched.add(vehicle_id)

    def save(self, session: Session) -> None:
        rows = [
            {"vehicle_id": v, "event_id": self.latest[v].event_id, "measured_at": self.latest[v].measured_at,
             "runs": self.latest[v].runs}
            for v in sorted(self.touched)
        ]
        upsert(session, VehicleRuns.__table__, rows, ["vehicle_id"])


class _Judge:
    """Judges one batch's events in measurement order, keeping every verdict in memory.

    The database holds the verdicts of earlier batches only: where a late upload needs a
    vehicle's history, this batch's own verdicts are merged over what the database says.
    """

    def __init__(self, session: Session, state: RunState, policy: Policy, tz: ZoneInfo) -> None:
        self.session, self.state, self.policy, self.tz = session, state, policy, tz
        self.events: dict[int, EventRow] = {}
        self.judged: list[Judged] = []
        self.runs_by_vehicle: dict[int, list[EventRow]] = {}  # judged here, with run state

    def judge(self, event: EventRow, station: Station, match: PlateMatch) -> None:
        self.events[event.id] = event
        vehicle = _apply_verdict(event, station, match, self.policy, self.tz)
        if vehicle is None:
            return
        if self.state.is_latest(vehicle.id, event):
            self._advance(event, vehicle, self.state.runs_of(vehicle.id))
            self.state.record(vehicle.id, event)
        else:
            # A late upload: its predecessor and successors come from the event history.
            self._advance(event, vehicle, self._previous_runs(vehicle.id, event))
            last = self._replay_later(event, vehicle)
            if last is not None:
                self.state.record(vehicle.id, last)
        self.runs_by_vehicle.setdefault(vehicle.id, []).append(event)

    def _advance(self, event: EventRow, vehicle: Vehicle, prev: dict[str, Any] | None) -> None:
        """Apply the judgement rule to one valid, judged event; newly judged pollutants become a Judged."""
        measured = limits.measured_pollutants(event.fuel_type, event.payload["measurements"], self.policy)
        result = judgement.judge(prev, event.measured_at, measured, set(event.exceeded or []), self.policy, self.tz)
        newly = sorted(set(result.judged) - set(event.judged or []))
        event.runs, event.judged, event.warnings = result.runs, result.judged, result.warnings
        if newly:
            self.judged.append(Judged(event, vehicle, newly))

    def _previous_runs(self, vehicle_id: int, event: EventRow) -> dict[str, Any] | None:
        """Run state after the vehicle's latest earlier valid, judged measurement."""
        stored = self.session.execute(
            select(Event.id, Event.measured_at, Event.runs)
            .where(*_history_of(vehicle_id, event), Event.measured_at <= event.measured_at)
            .order_by(Event.measured_at.desc(), Event.id.desc())
            .limit(1)
        ).first()
        candidates = [
            (e.measured_at, e.id, e.runs) for e in self.runs_by_vehicle.get(vehicle_id, [])
            if e.runs is not None and e.id != event.id and e.measured_at <= event.measured_at
        ]
        if stored is not None:
            # A stored event re-judged earlier in this batch counts with its new runs.
            mine = self.events.get(stored.id)
            candidates.append((stored.measured_at, stored.id, mine.runs if mine else stored.runs))
        return max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None

    def _replay_later(self, event: EventRow, vehicle: Vehicle) -> EventRow | None:
        """A late upload lands inside the vehicle's history: re-run the rule over what follows it.

        Runs are consecutive in measurement time, not arrival time, so a station that uploads
        after an outage can complete a run that later measurements continue. New judgements
        become violations. A violation already recorded is never withdrawn automatically: if
        a late passing measurement breaks its run, the event keeps its `violation_id` while
        its `judged` shows the recomputed rule, for a person to review. (This batch's own
        events are judged in measurement order, so every later one is already stored.)
        """
        stored = self.session.execute(
            select(Event.id, Event.station_id, Event.measured_at, Event.payload,
                   *(getattr(Event, name) for name in VERDICT_COLUMNS))
            .where(*_history_of(vehicle.id, event), Event.measured_at > event.measured_at)
            .order_by(Event.measured_at, Event.id)
        ).all()
        runs, last = event.runs, None
        for row in stored:
            last = self.events.setdefault(row.id, EventRow(**row._mapping))
            self._advance(last, vehicle, runs)
            runs = last.runs
        return last


def _history_of(vehicle_id: int, event: EventRow) -> tuple[Any, ...]:
    """The stored, valid, judged measurements of a vehicle other than `event`."""
    return (Event.vehicle_id == vehicle_id, Event.status == PROCESSED, Event.runs.is_not(None), Event.id != event.id)


def _apply_verdict(
    event: EventRow, station: Station, match: PlateMatch, policy: Policy, tz: ZoneInfo
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
        station_calibrated=station_calibrated(station, event.measured_at.astimezone(tz).date()),
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
