from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from remote_sensing.validity import Reading, compute_vsp, effective_vsp, validity_reasons

POLICY = Policy()
ORDER = [
    "speed_out_of_range",
    "acceleration_out_of_range",
    "vsp_out_of_range",
    "wind_too_strong",
    "temperature_out_of_range",
    "humidity_too_high",
    "plate_unreadable",
    "station_uncalibrated",
    "station_suspended",
    "no_tailpipe",
]

VALID = Reading(
    speed_kmh=42.5,
    acceleration_ms2=0.3,
    vsp_kw_t=8.2,
    wind_speed_ms=2.1,
    temperature_c=12.0,
    humidity_pct=65.0,
    plate_confidence=0.97,
    plate_readable=True,
    station_calibrated=True,
    vehicle_fuel="diesel",
)


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


def reasons(**changes: object) -> list[str]:
    return validity_reasons(replace(VALID, **changes), POLICY)


def test_valid_reading_has_no_reason() -> None:
    assert reasons() == []


# Each bound: exactly on it is valid, the next float outside is not. The VSP is given so
# that speed and acceleration are checked alone.
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("speed_kmh", POLICY.speed_min_kmh, None),
        ("speed_kmh", below(POLICY.speed_min_kmh), "speed_out_of_range"),
        ("speed_kmh", POLICY.speed_max_kmh, None),
        ("speed_kmh", above(POLICY.speed_max_kmh), "speed_out_of_range"),
        ("speed_kmh", 0.0, "speed_out_of_range"),
        ("acceleration_ms2", POLICY.acceleration_min_ms2, None),
        ("acceleration_ms2", below(POLICY.acceleration_min_ms2), "acceleration_out_of_range"),
        ("acceleration_ms2", POLICY.acceleration_max_ms2, None),
        ("acceleration_ms2", above(POLICY.acceleration_max_ms2), "acceleration_out_of_range"),
        ("vsp_kw_t", POLICY.vsp_min_kw_t, None),
        ("vsp_kw_t", below(POLICY.vsp_min_kw_t), "vsp_out_of_range"),
        ("vsp_kw_t", POLICY.vsp_max_kw_t, None),
        ("vsp_kw_t", above(POLICY.vsp_max_kw_t), "vsp_out_of_range"),
        ("wind_speed_ms", POLICY.wind_max_ms, None),
        ("wind_speed_ms", above(POLICY.wind_max_ms), "wind_too_strong"),
        ("wind_speed_ms", 0.0, None),
        ("wind_speed_ms", None, None),
        ("temperature_c", POLICY.temperature_min_c, None),
        ("temperature_c", below(POLICY.temperature_min_c), "temperature_out_of_range"),
        ("temperature_c", POLICY.temperature_max_c, None),
        ("temperature_c", above(POLICY.temperature_max_c), "temperature_out_of_range"),
        ("temperature_c", None, None),
        ("humidity_pct", POLICY.humidity_max_pct, None),
        ("humidity_pct", above(POLICY.humidity_max_pct), "humidity_too_high"),
        ("humidity_pct", 0.0, None),
        ("humidity_pct", None, None),
        ("plate_confidence", POLICY.plate_confidence_min, None),
        ("plate_confidence", below(POLICY.plate_confidence_min), "plate_unreadable"),
        ("plate_confidence", 1.0, None),
        ("plate_confidence", 0.0, "plate_unreadable"),
        ("plate_readable", False, "plate_unreadable"),
        ("station_calibrated", False, "station_uncalibrated"),
        ("station_suspended", True, "station_suspended"),
        ("vehicle_fuel", "electric", "no_tailpipe"),
        ("vehicle_fuel", "hybrid", None),
        ("vehicle_fuel", None, None),
    ],
)
def test_each_bound(field: str, value: object, reason: str | None) -> None:
    assert reasons(**{field: value}) == ([reason] if reason else [])


def test_default_bounds_are_domain_defaults() -> None:
    # Guards the edge tests above against a silently changed default.
    assert (POLICY.speed_min_kmh, POLICY.speed_max_kmh) == (5.0, 120.0)
    assert (POLICY.acceleration_min_ms2, POLICY.acceleration_max_ms2) == (-2.0, 2.0)
    assert (POLICY.vsp_min_kw_t, POLICY.vsp_max_kw_t) == (0.0, 14.0)
    assert POLICY.wind_max_ms == 5.0
    assert (POLICY.temperature_min_c, POLICY.temperature_max_c) == (-20.0, 45.0)
    assert POLICY.humidity_max_pct == 85.0
    assert POLICY.plate_confidence_min == 0.80


def test_literal_domain_edges() -> None:
    assert reasons(speed_kmh=5, wind_speed_ms=5, humidity_pct=85, plate_confidence=0.80) == []
    assert reasons(speed_kmh=120, temperature_c=-20) == []
    assert reasons(speed_kmh=4.99) == ["speed_out_of_range"]
    assert reasons(speed_kmh=120.01) == ["speed_out_of_range"]
    assert reasons(plate_confidence=0.79) == ["plate_unreadable"]


def test_all_reasons_in_table_order() -> None:
    worst = Reading(
        speed_kmh=200.0,
        acceleration_ms2=3.0,
        vsp_kw_t=20.0,
        wind_speed_ms=9.0,
        temperature_c=50.0,
        humidity_pct=99.0,
        plate_confidence=0.1,
        plate_readable=False,
        station_calibrated=False,
        vehicle_fuel="electric",
        station_suspended=True,
    )
    assert validity_reasons(worst, POLICY) == ORDER


def test_policy_overrides_are_honoured() -> None:
    strict = Policy(speed_max_kmh=60.0, wind_max_ms=2.0, plate_confidence_min=0.99)
    assert validity_reasons(VALID, strict) == ["wind_too_strong", "plate_unreadable"]
    assert validity_reasons(replace(VALID, speed_kmh=61.0), strict)[0] == "speed_out_of_range"


@pytest.mark.parametrize("field", ["speed_kmh", "acceleration_ms2", "vsp_kw_t", "wind_speed_ms"])
def test_nan_fails_closed(field: str) -> None:
    assert len(reasons(**{field: math.nan})) == 1


def test_nan_confidence_is_unreadable() -> None:
    assert reasons(plate_confidence=math.nan) == ["plate_unreadable"]


# VSP -----------------------------------------------------------------------------------


def test_compute_vsp_formula() -> None:
    v, a = 42.5, 0.3
    assert compute_vsp(v, a) == pytest.approx(0.05921 * v + 0.305924 * v * a + 6.52981e-6 * v**3)
    assert compute_vsp(50.0, 0.0) == pytest.approx(2.9605 + 0.81622625)
    assert compute_vsp(0.0, 1.5) == 0.0


def test_effective_vsp_prefers_the_reported_value() -> None:
    assert effective_vsp(VALID) == 8.2
    assert effective_vsp(replace(VALID, vsp_kw_t=0.0)) == 0.0  # zero is a value, not absent
    assert effective_vsp(replace(VALID, vsp_kw_t=None)) == compute_vsp(42.5, 0.3)


def test_computed_vsp_is_checked_when_absent() -> None:
    assert reasons(vsp_kw_t=None) == []
    assert reasons(vsp_kw_t=None, speed_kmh=100.0, acceleration_ms2=1.0) == ["vsp_out_of_range"]
    assert reasons(vsp_kw_t=None, speed_kmh=50.0, acceleration_ms2=-1.0) == ["vsp_out_of_range"]


def test_reported_vsp_overrides_the_computed_one() -> None:
    assert reasons(vsp_kw_t=5.0, speed_kmh=100.0, acceleration_ms2=1.0) == []
    assert reasons(vsp_kw_t=20.0, speed_kmh=20.0, acceleration_ms2=0.0) == ["vsp_out_of_range"]


floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e4, max_value=1e4)
maybe = st.none() | floats


@given(
    st.builds(
        Reading,
        speed_kmh=floats,
        acceleration_ms2=floats,
        vsp_kw_t=maybe,
        wind_speed_ms=maybe,
        temperature_c=maybe,
        humidity_pct=maybe,
        plate_confidence=st.floats(min_value=0, max_value=1),
        plate_readable=st.booleans(),
        station_calibrated=st.booleans(),
        vehicle_fuel=st.sampled_from([None, "diesel", "gasoline", "electric"]),
        station_suspended=st.booleans(),
    )
)
def test_reasons_are_unique_known_and_in_table_order(reading: Reading) -> None:
    found = validity_reasons(reading, POLICY)
    assert found == [code for code in ORDER if code in found]
    assert ("plate_unreadable" in found) == (
        not reading.plate_readable or reading.plate_confidence < POLICY.plate_confidence_min
    )
    assert ("no_tailpipe" in found) == (reading.vehicle_fuel == "electric")
    assert ("station_suspended" in found) == reading.station_suspended


def test_co2_signal_too_low_at_or_below_minimum() -> None:
    base = dict(
        speed_kmh=40.0, acceleration_ms2=0.2, vsp_kw_t=None, wind_speed_ms=1.0, temperature_c=10.0,
        humidity_pct=50.0, plate_confidence=0.95, plate_readable=True, station_calibrated=True, vehicle_fuel=None,
    )
    policy = Policy()
    assert "co2_signal_too_low" in validity_reasons(Reading(**base, co2_pct=0.0), policy)
    assert validity_reasons(Reading(**base, co2_pct=0.01), policy) == []
    assert validity_reasons(Reading(**base, co2_pct=None), policy) == []
    strict = Policy(co2_min_pct=1.0)
    assert "co2_signal_too_low" in validity_reasons(Reading(**base, co2_pct=1.0), strict)
    assert validity_reasons(Reading(**base, co2_pct=1.01), strict) == []
