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

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import plates
from core.db import insert_ignore, is_postgres, utcnow
from core.identity import Station, station_calibrated
from core.registry import Vehicle
from core.settings import Policy
from remote_sensing import judgement, limits, validity
from remote_sensing.models import PROCESSED, RECEIVED, Event, PolicyRecord


@dataclass(frozen=True)
class Judged:
    """An event whose measurement completed a run: the enforcement floor records a violation."""

    event: Event
    vehicle: Vehicle
    pollutants: list[str]


def claim_pending(session: Session, limit: int, ids: Sequence[int] | None = None) -> list[Event]:
    """Lock up to `limit` waiting events; concurrent judges skip each other's rows."""
    query = select(Event).where(Event.status == RECEIVED).order_by(Event.id).limit(limit)
    if ids is not None:
        query = query.where(Event.id.in_(ids))
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


def match_plate(session: Session, raw: str, color: str, trusted: bool, region: str) -> PlateMatch:
    """Registry lookup; a provisional vehicle is created only for a trusted, readable read.

    `exact` means the cleaned plate as read is registered; a read that needed an OCR
    repair (苏B1234O) can only match `fuzzy`, and only when one registered plate fits.
    """
    cleaned = plates.clean_plate(raw)
    read = plates.readable_plate(cleaned)
    if read is None:
        return PlateMatch(None, "none", None)
    by_plate = {
        v.plate: v
        for v in session.scalars(
            select(Vehicle).where(Vehicle.plate_color == color, Vehicle.plate_key == plates.confusion_key(read))
        )
    }
    registered = [p for p, v in by_plate.items() if v.registered]
    exact = by_plate.get(cleaned)
    kind, plate = plates.decide_match(cleaned, exact is not None and exact.registered, registered)
    if kind != "none" and plate is not None:
        return PlateMatch(read, kind, by_plate[plate])
    vehicle = by_plate.get(read)
    if vehicle is None and trusted:
        insert_ignore(
            session, Vehicle.__table__,
            [{"plate": read, "plate_color": color, "plate_key": plates.confusion_key(read), "registered": False,
              "region": region, "created_at": utcnow(), "updated_at": utcnow()}],
            ["plate", "plate_color"],
        )
        vehicle = session.scalar(select(Vehicle).where(Vehicle.plate == read, Vehicle.plate_color == color))
    return PlateMatch(read, "none", vehicle)


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
    digest = ensure_policy(session, policy)
    stations = {s.id: s for s in session.scalars(select(Station).where(Station.id.in_({e.station_id for e in events})))}
    matches: dict[int, PlateMatch] = {}
    for event in events:
        plate = event.payload["plate"]
        trusted = plate["confidence"] >= policy.plate_confidence_min
        region = stations[event.station_id].region  # an outside vehicle belongs where it was seen
        matches[event.id] = match_plate(session, plate["number"], plate["color"], trusted, region)
    _lock_vehicles(session, {m.vehicle.id for m in matches.values() if m.vehicle is not None})

    judged: list[Judged] = []
    for event in sorted(events, key=lambda e: (e.measured_at, e.id)):
        judged += _judge_one(session, event, stations[event.station_id], matches[event.id], policy, tz)
        event.policy_digest = digest
        session.flush()  # the next event of the same vehicle reads this one's runs
    return judged


def _judge_one(
    session: Session, event: Event, station: Station, match: PlateMatch, policy: Policy, tz: ZoneInfo
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
    prev = previous_runs(session, vehicle.id, event.measured_at, event.id)
    judged = _advance(event, prev, policy, tz)
    out = [Judged(event, vehicle, judged)] if judged else []
    return out + _replay_later(session, event, vehicle, policy, tz)


def _advance(event: Event, prev: dict[str, Any] | None, policy: Policy, tz: ZoneInfo) -> list[str]:
    """Apply the judgement rule to one valid, judged event; returns newly judged pollutants."""
    measured = limits.measured_pollutants(event.fuel_type, event.payload["measurements"], policy)
    result = judgement.judge(prev, event.measured_at, measured, set(event.exceeded or []), policy, tz)
    before = set(event.judged or [])
    event.runs, event.judged, event.warnings = result.runs, result.judged, result.warnings
    return sorted(set(result.judged) - before)


def _replay_later(session: Session, event: Event, vehicle: Vehicle, policy: Policy, tz: ZoneInfo) -> list[Judged]:
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
    return out
