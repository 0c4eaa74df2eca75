"""The vehicle and fleet registry: what the vehicle administration knows of each vehicle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import plates
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


def upsert_fleets(session: Session, fleets: list[dict[str, Any]]) -> UpsertCount:
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
        row.name, row.region = item["name"], item["region"]
    session.flush()
    return UpsertCount(created, updated)


_VEHICLE_FIELDS = (
    "vin", "fuel_type", "category", "emission_standard", "use_nature", "registered_on", "region", "remote_obd",
)


def upsert_vehicles(session: Session, vehicles: list[dict[str, Any]]) -> tuple[UpsertCount, list[Vehicle]]:
    """Create or update by (plate, plate_color); a provisional vehicle becomes registered.

    Unknown fleet codes must be rejected by the caller beforehand (see `missing_fleets`).
    """
    codes = {v["fleet_code"] for v in vehicles if v.get("fleet_code")}
    rows = session.execute(select(Fleet.code, Fleet.id).where(Fleet.code.in_(codes)))
    fleet_ids = {code: fid for code, fid in rows}
    existing = _existing(
        session, Vehicle, [(v["plate"], v["plate_color"]) for v in vehicles], Vehicle.plate, Vehicle.plate_color
    )
    created = updated = 0
    touched: list[Vehicle] = []
    for item in vehicles:
        key = (item["plate"], item["plate_color"])
        row = existing.get(key)
        if row is None:
            row = existing[key] = Vehicle(plate=item["plate"], plate_color=item["plate_color"])
            session.add(row)
            created += 1
        else:
            updated += 1
        row.plate_key = plates.confusion_key(item["plate"])
        row.registered = True
        for name in _VEHICLE_FIELDS:
            if name in item:
                setattr(row, name, item[name])
        if "fleet_code" in item:
            row.fleet_id = fleet_ids.get(item["fleet_code"]) if item["fleet_code"] else None
        if "inspection_cycle" in item:
            cycle = item["inspection_cycle"] or {}
            row.cycle_last_on, row.cycle_next_due_on = cycle.get("last_on"), cycle.get("next_due_on")
        touched.append(row)
    session.flush()
    return UpsertCount(created, updated), touched


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
