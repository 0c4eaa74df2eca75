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
from core.db import insert_ignore, is_postgres, upsert, utcnow
from core.identity import Station, station_calibrated
from core.registry import Vehicle
from core.settings import Policy
from remote_sensing import judgement, limits, validity
from remote_sensing.models import PROCESSED, RECEIVED, Event, PolicyRecord, VehicleRuns


@dataclass(frozen=True)
class Judged:
    """An event whose measurement completed a run: the enforcement floor records a violation."""

    event: Event
    vehicle: Vehicle
    pollutants: list[str]


def claim_pending(session: Session, limit: int) -> list[Event]:
    """Lock up to `limit` waiting events; concurrent judges skip each other's rows."""
    query = select(Event).where(Event.status == RECEIVED).order_by(Event.id).limit(limit)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


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


def previous_runs(session: Session, vehicle_id: int, before: datetime, event_id: int) -> dict[str, Any] | None:
    """Run state after the vehicle's latest earlier valid, judged measurement."""
    query = (
        select(Event.runs)
        .where(
            Event.vehicle_id == vehicle_id,
            Event.status == PROCESSED,
            Event.runs.is_not(None),
            Event.id != event_id,
            Event.measured_at <= before,
        )
        .order_by(Event.measured_at.desc(), Event.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def _lock_vehicles(session: Session, vehicle_ids: set[int]) -> None:
    """Serialise judges per vehicle, always in id order so two batches cannot deadlock."""
    if vehicle_ids and is_postgres(session):
        session.execute(select(Vehicle.id).where(Vehicle.id.in_(sorted(vehicle_ids))).order_by(Vehicle.id).with_for_update())


def judge_events(session: Session, events: list[Event], policy: Policy, tz: ZoneInfo) -> list[Judged]:
    """Verdicts for a claimed batch, in a handful of set-based statements."""
    digest = ensure_policy(session, policy)
    stations = {s.id: s for s in session.scalars(select(Station).where(Station.id.in_({e.station_id for e in events})))}
    reads = [
        PlateRead(e.payload["plate"]["number"], e.payload["plate"]["color"],
                  e.payload["plate"]["confidence"] >= policy.plate_confidence_min, stations[e.station_id].region)
        for e in events
    ]
    matches = dict(zip((e.id for e in events), match_plates(session, reads), strict=True))
    vehicle_ids = {m.vehicle.id for m in matches.values() if m.vehicle is not None}
    _lock_vehicles(session, vehicle_ids)
    state = RunState.load(session, vehicle_ids)

    judged: list[Judged] = []
    for event in sorted(events, key=lambda e: (e.measured_at, e.id)):
        judged += _judge_one(session, event, stations[event.station_id], matches[event.id], state, policy, tz)
        event.policy_digest = digest
    state.save(session)
    return judged


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
        rows = session.scalars(select(VehicleRuns).where(VehicleRuns.vehicle_id.in_(vehicle_ids)))
        return cls({r.vehicle_id: Latest(r.measured_at, r.event_id, r.runs) for r in rows})

    def is_latest(self, vehicle_id: int, event: Event) -> bool:
        last = self.latest.get(vehicle_id)
        return last is None or (event.measured_at, event.id) > (last.measured_at, last.event_id)

    def runs_of(self, vehicle_id: int) -> dict[str, Any] | None:
        last = self.latest.get(vehicle_id)
        return last.runs if last else None

    def record(self, vehicle_id: int, event: Event) -> None:
        self.latest[vehicle_id] = Latest(event.measured_at, event.id, event.runs or {})
        self.touched.add(vehicle_id)

    def save(self, session: Session) -> None:
        rows = [
            {"vehicle_id": v, "event_id": self.latest[v].event_id, "measured_at": self.latest[v].measured_at,
             "runs": self.latest[v].runs}
            for v in sorted(self.touched)
        ]
        upsert(session, VehicleRuns.__table__, rows, ["vehicle_id"])


def _judge_one(
    session: Session, event: Event, station: Station, match: PlateMatch, state: RunState, policy: Policy,
    tz: ZoneInfo,
) -> list[Judged]:
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
    measurements = body["measurements"]

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
        return []
    exceeded = limits.exceeded_pollutants(fuel, measurements, policy)
    if exceeded is None:
        event.reasons, event.verdict = ["fuel_type_unknown"], "invalid"
        return []
    event.reasons = []
    event.exceeded = exceeded
    event.verdict = "exceed" if exceeded else "pass"
    if vehicle is None:
        return []
    if state.is_latest(vehicle.id, event):
        judged = _advance(event, state.runs_of(vehicle.id), policy, tz)
        state.record(vehicle.id, event)
        return [Judged(event, vehicle, judged)] if judged else []
    # A late upload: its predecessor and successors come from the event history.
    judged = _advance(event, previous_runs(session, vehicle.id, event.measured_at, event.id), policy, tz)
    out = [Judged(event, vehicle, judged)] if judged else []
    later = _replay_later(session, event, vehicle, policy, tz)
    if later[1] is not None:
        state.record(vehicle.id, later[1])
    return out + later[0]


def _advance(event: Event, prev: dict[str, Any] | None, policy: Policy, tz: ZoneInfo) -> list[str]:
    """Apply the judgement rule to one valid, judged event; returns newly judged pollutants."""
    measured = limits.measured_pollutants(event.fuel_type, event.payload["measurements"], policy)
    result = judgement.judge(prev, event.measured_at, measured, set(event.exceeded or []), policy, tz)
    before = set(event.judged or [])
    event.runs, event.judged, event.warnings = result.runs, result.judged, result.warnings
    return sorted(set(result.judged) - before)


def _replay_later(
    session: Session, event: Event, vehicle: Vehicle, policy: Policy, tz: ZoneInfo
) -> tuple[list[Judged], Event | None]:
    """A late upload lands inside the vehicle's history: re-run the rule over what follows it.

    Runs are consecutive in measurement time, not arrival time, so a station that uploads
    after an outage can complete a run that later measurements continue. New judgements
    become violations. A violation already recorded is never withdrawn automatically: if
    a late passing measurement breaks its run, the event keeps its `violation_id` while
    its `judged` shows the recomputed rule, for a person to review.
    """
    later = session.scalars(
        select(Event)
        .where(
            Event.vehicle_id == vehicle.id,
            Event.status == PROCESSED,
            Event.runs.is_not(None),
            Event.id != event.id,
            Event.measured_at > event.measured_at,
        )
        .order_by(Event.measured_at, Event.id)
    ).all()
    out: list[Judged] = []
    runs = event.runs
    for item in later:
        newly = _advance(item, runs, policy, tz)
        if newly:
            out.append(Judged(item, vehicle, newly))
        runs = item.runs
    return out, (later[-1] if later else None)
