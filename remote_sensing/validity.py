"""Validity of a remote-sensing reading (DOMAIN.md section 2, HJ 845-style windows).

An invalid reading is stored and counted in station statistics but never enforced.
Comparisons are written as ``not (low <= x <= high)`` so that a NaN fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Policy

# Registry fuel of vehicles that have no tailpipe to measure.
ELECTRIC = "electric"


@dataclass(frozen=True)
class Reading:
    """What validity needs from one event, already joined with station and registry facts."""

    speed_kmh: float
    acceleration_ms2: float
    vsp_kw_t: float | None
    wind_speed_ms: float | None
    temperature_c: float | None
    humidity_pct: float | None
    plate_confidence: float
    plate_readable: bool
    station_calibrated: bool  # measured within the station's calibration window
    vehicle_fuel: str | None  # registry fuel, when the plate matched
    co2_pct: float | None = None  # the plume's CO2: the reference every ratio is taken against
    station_suspended: bool = False  # measured inside one of the station's suspension intervals


def compute_vsp(speed_kmh: float, acceleration_ms2: float) -> float:
    """Vehicle specific power in kW/t on a flat road (v in km/h, a in m/s^2), per DOMAIN.md."""
    v, a = speed_kmh, acceleration_ms2
    return 0.05921 * v + 0.305924 * v * a + 6.52981e-6 * v**3


def effective_vsp(reading: Reading) -> float:
    """The VSP the station reported, else the one computed from speed and acceleration."""
    if reading.vsp_kw_t is not None:
        return reading.vsp_kw_t
    return compute_vsp(reading.speed_kmh, reading.acceleration_ms2)


# An absent (None) value is not a reason: only ambient values may be absent, and many
# stations lack a weather mast.
def _outside(value: float | None, low: float, high: float) -> bool:
    return value is not None and not (low <= value <= high)


def _above(value: float | None, high: float) -> bool:
    return value is not None and not (value <= high)


def validity_reasons(reading: Reading, policy: Policy) -> list[str]:
    """The reason codes that make the reading invalid, in DOMAIN.md table order; [] if valid."""
    checks = (
        (
            "speed_out_of_range",
            _outside(reading.speed_kmh, policy.speed_min_kmh, policy.speed_max_kmh),
        ),
        (
            "acceleration_out_of_range",
            _outside(
                reading.acceleration_ms2, policy.acceleration_min_ms2, policy.acceleration_max_ms2
            ),
        ),
        (
            "vsp_out_of_range",
            _outside(effective_vsp(reading), policy.vsp_min_kw_t, policy.vsp_max_kw_t),
        ),
        ("wind_too_strong", _above(reading.wind_speed_ms, policy.wind_max_ms)),
        # No CO2 above background means the beam missed the plume: nothing was measured.
        ("co2_signal_too_low", reading.co2_pct is not None and not (reading.co2_pct > policy.co2_min_pct)),
        (
            "temperature_out_of_range",
            _outside(reading.temperature_c, policy.temperature_min_c, policy.temperature_max_c),
        ),
        ("humidity_too_high", _above(reading.humidity_pct, policy.humidity_max_pct)),
        (
            "plate_unreadable",
            not (reading.plate_confidence >= policy.plate_confidence_min)
            or not reading.plate_readable,
        ),
        ("station_uncalibrated", not reading.station_calibrated),
        ("station_suspended", reading.station_suspended),
        ("no_tailpipe", reading.vehicle_fuel == ELECTRIC),
    )
    return [code for code, failed in checks if failed]
