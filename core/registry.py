"""The vehicle and fleet registry: what the vehicle administration knows of each vehicle.

The `vehicles` row is the current state (what queries join on); the history is kept beside
it (DOMAIN.md section 7): `vehicle_versions` hold fleet membership, use nature, fuel type and
region with the local day from which each version holds, and `inspection_cycles` every cycle
ever recorded. An upsert appends a version only when one of those facts changed, and a new
cycle never deletes an older one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit, plates
from core.db import Base, BigId, UTCDateTime, is_postgres, utcnow

FUEL_TYPES = ("gasoline", "diesel", "gas", "hybrid", "electric")
PLATE_COLORS = ("blue", "yellow", "green", "yellow_green", "white", "black")
USE_NATURES = ("operating", "non_operating")


class Fleet(Base):
    __tablename__ = "fleets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (
        UniqueConstraint("plate", "plate_color"),
        Index("ix_vehicles_fuzzy", "plate_color", "plate_key"),
        Index("ix_vehicles_fleet", "fleet_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plate: Mapped[str] = mapped_column(String(16))
    plate_color: Mapped[str] = mapped_column(String(16))
    # OCR-confusion key of the plate: fuzzy matching is one indexed lookup.
    plate_key: Mapped[str] = mapped_column(String(16))
    registered: Mapped[bool] = mapped_column(Boolean, default=True)
    vin: Mapped[str | None] = mapped_column(String(17))
    fuel_type: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(8))
    emission_standard: Mapped[int | None] = mapped_column(Integer)
    use_nature: Mapped[str | None] = mapped_column(String(16))
    registered_on: Mapped[date | None] = mapped_column(Date)
    region: Mapped[str | None] = mapped_column(String(6))
    fleet_id: Mapped[int | None] = mapped_column(ForeignKey("fleets.id"))
    cycle_last_on: Mapped[date | None] = mapped_column(Date)
    cycle_next_due_on: Mapped[date | None] = mapped_column(Date)
    remote_obd: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# The facts a violation records at detection, versioned with the day from which they hold.
VERSIONED = ("fleet_id", "use_nature", "fuel_type", "region")


class VehicleVersion(Base):
    """The versioned facts of a vehicle from `valid_from` (a local day) until the next version."""

    __tablename__ = "vehicle_versions"
    __table_args__ = (Index("ix_vehicle_versions_vehicle", "vehicle_id", "valid_from", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    valid_from: Mapped[date] = mapped_column(Date)
    fleet_id: Mapped[int | None] = mapped_column(ForeignKey("fleets.id"))
    use_nature: Mapped[str | None] = mapped_column(String(16))
    fuel_type: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(6))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InspectionCycle(Base):
    """One comprehensive performance inspection cycle (last_on <= day < next_due_on)."""

    __tablename__ = "inspection_cycles"
    __table_args__ = (UniqueConstraint("vehicle_id", "last_on"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    last_on: Mapped[date] = mapped_column(Date)
    next_due_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class UpsertCount:
    created: int
    updated: int


def _existing(session: Session, model: Any, keys: list[Any], *cols: Any) -> dict[Any, Any]:
    found: dict[Any, Any] = {}
    for chunk_start in range(0, len(keys), 500):
        chunk = keys[chunk_start : chunk_start + 500]
        cond = tuple_(*cols).in_(chunk) if len(cols) > 1 else cols[0].in_(chunk)
        for row in session.scalars(select(model).where(cond)):
            key = tuple(getattr(row, c.key) for c in cols) if len(cols) > 1 else getattr(row, cols[0].key)
            found[key] = row
    return found


def upsert_fleets(session: Session, fleets: list[dict[str, Any]], *, actor: str) -> UpsertCount:
    existing = _existing(session, Fleet, [f["code"] for f in fleets], Fleet.code)
    created = updated = 0
    for item in fleets:
        row = existing.get(item["code"])
        if row is None:
            row = existing[item["code"]] = Fleet(code=item["code"])
            session.add(row)
            created += 1
        else:
            updated += 1
        changed = {name: [getattr(row, name), item[name]] for name in ("name", "region")
                   if getattr(row, name) != item[name]}
        row.name, row.region = item["name"], item["region"]
        if changed:
            action = "registry.fleet_changed" if row.id is not None else "registry.fleet_created"
            audit.append(session, actor=actor, action=action, subject_type="fleet", subject_id=item["code"],
                         data={"changed": changed})
    session.flush()
    return UpsertCount(created, updated)


_VEHICLE_FIELDS = ("vin", "category", "emission_standard", "registered_on", "remote_obd")


def holding_on(versions: list[VehicleVersion], day: date) -> VehicleVersion | None:
    """The version that holds on `day`: the latest begun by then; before the first, the first
    (what the registry first said is the best knowledge of earlier days)."""
    # A version not flushed yet (no id) is the newest of its day: it was given last.
    ordered = sorted(versions, key=lambda v: (v.valid_from, v.id is None, v.id or 0))
    begun = [v for v in ordered if v.valid_from <= day]
    return begun[-1] if begun else (ordered[0] if ordered else None)


def _by_vehicle(session: Session, model: Any, vehicle_ids: Iterable[int], *order: Any) -> dict[int, list[Any]]:
    """The rows of `model` of these vehicles, grouped by vehicle in `order`, in bounded IN lists."""
    found: dict[int, list[Any]] = {}
    ids = sorted(set(vehicle_ids))
    for i in range(0, len(ids), 500):
        query = select(model).where(model.vehicle_id.in_(ids[i:i + 500])).order_by(*order)
        for row in session.scalars(query):
            found.setdefault(row.vehicle_id, []).append(row)
    return found


def versions_of(session: Session, vehicle_ids: Iterable[int]) -> dict[int, list[VehicleVersion]]:
    return _by_vehicle(session, VehicleVersion, vehicle_ids, VehicleVersion.valid_from, VehicleVersion.id)


def cycles_of(session: Session, vehicle_ids: Iterable[int]) -> dict[int, list[InspectionCycle]]:
    return _by_vehicle(session, InspectionCycle, vehicle_ids, InspectionCycle.last_on)


def cycle_pairs(session: Session, vehicle_id: int) -> list[tuple[date, date]]:
    """The vehicle's inspection cycles on record as (last_on, next_due_on), oldest first."""
    return [(c.last_on, c.next_due_on) for c in cycles_of(session, [vehicle_id]).get(vehicle_id, [])]


@dataclass(frozen=True)
class Facts:
    """What a violation records of its vehicle at detection."""

    fleet_id: int | None
    use_nature: str | None
    region: str | None


def facts_on(session: Session, wanted: Iterable[tuple[Vehicle, date]]) -> dict[tuple[int, date], Facts]:
    """Each (vehicle, local day)'s facts from the version that held then (a provisional
    vehicle, which has none, from its row)."""
    pairs = list(wanted)
    versions = versions_of(session, (vehicle.id for vehicle, _ in pairs))
    found: dict[tuple[int, date], Facts] = {}
    for vehicle, day in pairs:
        holder: Any = holding_on(versions.get(vehicle.id, []), day) or vehicle
        found[(vehicle.id, day)] = Facts(holder.fleet_id, holder.use_nature, holder.region)
    return found


def upsert_vehicles(
    session: Session, vehicles: list[dict[str, Any]], *, today: date, actor: str
) -> tuple[UpsertCount, list[Vehicle]]:
    """Create or update by (plate, plate_color); a provisional vehicle becomes registered.

    The versioned facts a body gives hold from its `valid_from` (default `today`, a local
    day; for a vehicle's first version its `registered_on`) and make a version when they
    differ from the version holding on that day; the row takes the latest version's. Cycles
    (one or a list) are added, or corrected by `last_on`; the row shows the latest. Every
    change is audited. Unknown fleet codes must be rejected by the caller beforehand (see
    `missing_fleets`).
    """
    codes = {v["fleet_code"] for v in vehicles if v.get("fleet_code")}
    rows = session.execute(select(Fleet.code, Fleet.id).where(Fleet.code.in_(codes)))
    fleet_ids = {code: fid for code, fid in rows}
    existing = _existing(
        session, Vehicle, [(v["plate"], v["plate_color"]) for v in vehicles], Vehicle.plate, Vehicle.plate_color
    )
    known = [row.id for row in existing.values()]
    versions, cycles = versions_of(session, known), cycles_of(session, known)
    created = updated = 0
    # First every row, flushed once for the new rows' ids; then their histories, flushed once:
    # a flush per vehicle made a 5,000-vehicle upload ten times slower.
    staged: list[tuple[dict[str, Any], Vehicle, bool, date | None, dict[str, Any]]] = []
    seen: set[int] = set()
    for item in vehicles:
        key = (item["plate"], item["plate_color"])
        row = existing.get(key)
        if row is None:
            row = existing[key] = Vehicle(plate=item["plate"], plate_color=item["plate_color"])
            session.add(row)
            created += 1
        else:
            updated += 1
        was_registered = id(row) in seen or (row.id is not None and row.registered)
        seen.add(id(row))
        row.plate_key = plates.confusion_key(item["plate"])
        row.registered = True
        changed = {name: [getattr(row, name), item[name]] for name in _VEHICLE_FIELDS
                   if name in item and getattr(row, name) != item[name]}
        for name in _VEHICLE_FIELDS:
            if name in item:
                setattr(row, name, item[name])
        staged.append((item, row, was_registered, row.registered_on, changed))
    session.flush()
    touched: list[Vehicle] = []
    for item, row, was_registered, registered_on, changed in staged:
        given = dict(item, fleet_id=fleet_ids.get(item["fleet_code"]) if item.get("fleet_code") else None) \
            if "fleet_code" in item else item
        history = versions.setdefault(row.id, [])
        # A first version holds from the vehicle's registration unless the body says otherwise.
        since = item.get("valid_from") or (None if history else registered_on) or today
        version = _new_version(row, history, given, since)
        if version is not None:
            session.add(version)
            history.append(version)
            changed["version"] = {"valid_from": version.valid_from,
                                  **{name: getattr(version, name) for name in VERSIONED}}
        latest = holding_on(history, date.max)
        for name in VERSIONED:
            setattr(row, name, getattr(latest, name))
        added = _add_cycles(session, row, cycles.setdefault(row.id, []), item.get("inspection_cycle"))
        if added:
            changed["inspection_cycles"] = added
        if changed or not was_registered:
            action = "registry.vehicle_changed" if was_registered else "registry.vehicle_created"
            audit.append(session, actor=actor, action=action, subject_type="vehicle", subject_id=row.id,
                         data={"plate": row.plate, "plate_color": row.plate_color, "changed": changed})
        touched.append(row)
    session.flush()
    return UpsertCount(created, updated), touched


def _new_version(row: Vehicle, history: list[VehicleVersion], given: dict[str, Any],
                 valid_from: date) -> VehicleVersion | None:
    """A version of the facts `given` from `valid_from`, unless the one holding then says the same.
    Facts the body leaves out keep what held on that day."""
    holder: Any = holding_on(history, valid_from) or row
    facts = {name: given[name] if name in given else getattr(holder, name) for name in VERSIONED}
    if history and all(getattr(holder, name) == value for name, value in facts.items()):
        return None
    return VehicleVersion(vehicle_id=row.id, valid_from=valid_from, **facts)


def _add_cycles(session: Session, row: Vehicle, stored: list[InspectionCycle],
                given: dict[str, date] | list[dict[str, date]] | None) -> list[dict[str, Any]]:
    """Record the cycles given (a new `last_on` adds one, a known one corrects its due day);
    answers what changed."""
    by_start = {c.last_on: c for c in stored}
    changes: list[dict[str, Any]] = []
    for cycle in [given] if isinstance(given, dict) else given or []:
        known = by_start.get(cycle["last_on"])
        if known is None:
            known = by_start[cycle["last_on"]] = InspectionCycle(
                vehicle_id=row.id, last_on=cycle["last_on"], next_due_on=cycle["next_due_on"])
            session.add(known)
            stored.append(known)
        elif known.next_due_on == cycle["next_due_on"]:
            continue
        known.next_due_on = cycle["next_due_on"]
        changes.append({"last_on": cycle["last_on"], "next_due_on": cycle["next_due_on"]})
    if by_start:
        current = by_start[max(by_start)]
        row.cycle_last_on, row.cycle_next_due_on = current.last_on, current.next_due_on
    return changes


def missing_fleets(session: Session, codes: set[str]) -> set[str]:
    found = set(session.scalars(select(Fleet.code).where(Fleet.code.in_(codes)))) if codes else set()
    return codes - found


def find_vehicle(session: Session, plate: str, plate_color: str | None) -> Vehicle | None:
    """The vehicle with this plate; without a colour, the registered one (if only one)."""
    query = select(Vehicle).where(Vehicle.plate == plate)
    if plate_color:
        return session.scalar(query.where(Vehicle.plate_color == plate_color))
    rows = list(session.scalars(query))
    registered = [v for v in rows if v.registered] or rows
    return registered[0] if len(registered) == 1 else None


def lock_fleets(session: Session, fleet_ids: Iterable[int | None]) -> None:
    """Lock fleets (in id order) before inserting rows that reference them: the foreign key's
    share lock, upgraded later by the ten-percent evaluation, deadlocks two such transactions."""
    ids = sorted({fid for fid in fleet_ids if fid is not None})
    if ids and is_postgres(session):
        session.execute(select(Fleet.id).where(Fleet.id.in_(ids)).order_by(Fleet.id).with_for_update())


def lock_vehicles(session: Session, vehicle_ids: Iterable[int]) -> None:
    """Serialise everything that judges, counts or transitions for these vehicles.

    Always in id order, so two transactions locking overlapping sets cannot deadlock;
    SQLite already serialises writers.
    """
    ids = sorted(set(vehicle_ids))
    if ids and is_postgres(session):
        session.execute(select(Vehicle.id).where(Vehicle.id.in_(ids)).order_by(Vehicle.id).with_for_update())
