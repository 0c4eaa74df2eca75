"""Realistic request bodies for tests and benchmarks."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

CST = timezone(timedelta(hours=8))


def rfc3339(dt: datetime) -> str:
    return dt.isoformat()


def event(event_id: str = "RS001-20261122-000123", *, at: datetime | None = None, plate: str = "苏B12345",
          color: str = "yellow", confidence: float = 0.97, **overrides: Any) -> dict[str, Any]:
    at = at or datetime.now(CST) - timedelta(minutes=1)
    body: dict[str, Any] = {
        "event_id": event_id,
        "measured_at": rfc3339(at),
        "lane": 1,
        "plate": {"number": plate, "color": color, "confidence": confidence},
        "speed_kmh": 42.5,
        "acceleration_ms2": 0.3,
        "vsp_kw_t": 8.2,
        "measurements": {"co_pct": 0.12, "co2_pct": 12.1, "hc_ppm": 45, "no_ppm": 820, "opacity_pct": 12.5,
                         "ringelmann": 0},
        "conditions": {"wind_speed_ms": 2.1, "temperature_c": 12.0, "humidity_pct": 65, "pressure_kpa": 101.2},
        "fuel_type_observed": "diesel",
    }
    for key, value in overrides.items():
        if key in ("measurements", "conditions") and isinstance(value, dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return copy.deepcopy(body)


def vehicle(plate: str = "苏B12345", color: str = "yellow", **overrides: Any) -> dict[str, Any]:
    body = {
        "plate": plate, "plate_color": color, "vin": "LZZ1CLVB8KA123456", "fuel_type": "diesel",
        "category": "N3", "emission_standard": 5, "use_nature": "operating", "registered_on": "2019-05-01",
        "region": "320200", "fleet_code": None,
        "inspection_cycle": {"last_on": "2026-03-10", "next_due_on": "2027-03-10"}, "remote_obd": True,
    }
    body.update(overrides)
    return body


FLEET_CODE = "91320200MA1XXXXXXW"  # check digit valid (GB 32100-2015)
