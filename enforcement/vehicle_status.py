"""One vehicle's standing: registry facts (and their history), open case, strikes this cycle, listings."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import registry, runtime
from core.registry import Fleet, Vehicle
from core.settings import Policy
from enforcement import cases, listings, violations


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


def history(session: Session, vehicle: Vehicle) -> dict[str, Any]:
    """The registry's versions (each from its local day) and every inspection cycle on record."""
    versions = registry.versions_of(session, [vehicle.id]).get(vehicle.id, [])
    fleet_ids = {v.fleet_id for v in versions if v.fleet_id}
    codes = {fid: code for fid, code in session.execute(select(Fleet.id, Fleet.code).where(Fleet.id.in_(fleet_ids)))}
    return {
        "versions": [{"valid_from": v.valid_from, "fleet_code": codes.get(v.fleet_id), "use_nature": v.use_nature,
                      "fuel_type": v.fuel_type, "region": v.region, "recorded_at": v.recorded_at}
                     for v in versions],
        "inspection_cycles": [{"last_on": c.last_on, "next_due_on": c.next_due_on, "recorded_at": c.recorded_at}
                              for c in registry.cycles_of(session, [vehicle.id]).get(vehicle.id, [])],
    }


def status(
    session: Session, vehicle: Vehicle, *, today: date | None = None, policy: Policy | None = None,
    with_history: bool = False,
) -> dict[str, Any]:
    """`today` (local) and `policy` default to this process's runtime, for callers without them."""
    if today is None or policy is None:
        rt = runtime.current()
        today, policy = today or cases.local_today(rt.tz), policy or rt.settings.policy
    case = cases.open_case_of(session, vehicle.id)
    found = {
        "vehicle": vehicle_fields(session, vehicle),
        "open_case": cases.present_cases(session, [case], today)[0] if case else None,
        "cycle_violations": violations.cycle_violations(session, vehicle, today, policy),
        "blacklisted": listings.is_blacklisted(session, vehicle),
        "listings": listings.entry_views(session, listings.vehicle_entries(session, vehicle)),
        "key_supervision": listings.key_supervision_reasons(session, vehicle, policy, today),
    }
    if with_history:
        found["history"] = history(session, vehicle)
    return found
