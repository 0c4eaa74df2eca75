"""Examples for the OpenAPI document: whole request values that several fields show."""

from __future__ import annotations

from typing import Any

USCC = "91320200MA1NBQ7K2G"  # a well-formed unified social credit code (check character included)
PLATE: dict[str, Any] = {"number": "苏B12345", "color": "yellow", "confidence": 0.97}
MEASUREMENTS: dict[str, Any] = {"co_pct": 0.12, "co2_pct": 12.1, "hc_ppm": 45, "no_ppm": 820,
                                "opacity_pct": 12.5, "ringelmann": 0}
CONDITIONS: dict[str, Any] = {"wind_speed_ms": 2.1, "temperature_c": 12.0, "humidity_pct": 65, "pressure_kpa": 101.2}
EVENT: dict[str, Any] = {
    "event_id": "RS001-20261122-000123", "measured_at": "2026-11-22T08:15:30+08:00", "lane": 1, "plate": PLATE,
    "speed_kmh": 42.5, "acceleration_ms2": 0.3, "vsp_kw_t": 8.2, "measurements": MEASUREMENTS,
    "conditions": CONDITIONS, "fuel_type_observed": "diesel",
}
SNAPSHOT_METADATA: dict[str, Any] = {
    "event_id": "BS001-20261122-000045", "captured_at": "2026-11-22T08:15:30+08:00", "lane": 2, "plate": PLATE,
    "camera_ringelmann": 2,
}
FLEET: dict[str, Any] = {"code": USCC, "name": "无锡顺达物流有限公司", "region": "320200"}
CYCLE: dict[str, Any] = {"last_on": "2026-03-10", "next_due_on": "2027-03-10"}
VEHICLE: dict[str, Any] = {
    "plate": "苏B12345", "plate_color": "yellow", "vin": "LZZ1EXND5KW123456", "fuel_type": "diesel",
    "category": "N3", "emission_standard": 5, "use_nature": "operating", "registered_on": "2019-05-01",
    "region": "320200", "fleet_code": USCC, "inspection_cycle": CYCLE, "remote_obd": True,
}
