from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from remote_sensing.limits import exceeded_pollutants, limits_for, measured_pollutants

POLICY = Policy()
FUELS = ["diesel", "gasoline", "gas", "hybrid"]


def test_limits_for_known_fuels() -> None:
    assert limits_for("diesel", POLICY) == {
        "opacity_pct": 30.0,
        "no_ppm": 1500.0,
        "ringelmann": 1.0,
    }
    for fuel in ("gasoline", "gas", "hybrid"):
        assert limits_for(fuel, POLICY) == {"co_pct": 2.5, "hc_ppm": 200.0, "no_ppm": 1500.0}


@pytest.mark.parametrize("fuel", [None, "electric", "hydrogen", "Diesel"])
def test_limits_for_unknown_fuel_is_empty(fuel: str | None) -> None:
    assert limits_for(fuel, POLICY) == {}


def test_limits_for_returns_a_copy() -> None:
    limits_for("diesel", POLICY)["no_ppm"] = 1.0
    assert POLICY.limits["diesel"]["no_ppm"] == 1500.0


@pytest.mark.parametrize(
    ("fuel", "pollutant"),
    [(fuel, p) for fuel in FUELS for p in POLICY.limits[fuel]],
)
def test_equal_passes_and_just_above_exceeds(fuel: str, pollutant: str) -> None:
    limit = POLICY.limits[fuel][pollutant]
    assert exceeded_pollutants(fuel, {pollutant: limit}, POLICY) == []
    assert exceeded_pollutants(fuel, {pollutant: math.nextafter(limit, math.inf)}, POLICY) == [
        pollutant
    ]
    assert exceeded_pollutants(fuel, {pollutant: 0.0}, POLICY) == []


def test_ringelmann_level_two_exceeds() -> None:
    assert exceeded_pollutants("diesel", {"ringelmann": 1}, POLICY) == []
    assert exceeded_pollutants("diesel", {"ringelmann": 2}, POLICY) == ["ringelmann"]


def test_exceeded_is_sorted_and_limited_to_the_fuel() -> None:
    measurements = {
        "opacity_pct": 45.0,
        "no_ppm": 1600.0,
        "ringelmann": 3,
        "co_pct": 9.0,  # not limited for diesel
        "co2_pct": 12.1,  # never limited
    }
    assert exceeded_pollutants("diesel", measurements, POLICY) == [
        "no_ppm",
        "opacity_pct",
        "ringelmann",
    ]
    assert exceeded_pollutants("gasoline", measurements, POLICY) == ["co_pct", "no_ppm"]


def test_absent_values_neither_exceed_nor_are_measured() -> None:
    measurements = {"co_pct": None, "hc_ppm": math.nan, "no_ppm": 1600.0}
    assert exceeded_pollutants("gasoline", measurements, POLICY) == ["no_ppm"]
    assert measured_pollutants("gasoline", measurements, POLICY) == {"no_ppm"}
    assert exceeded_pollutants("gasoline", {}, POLICY) == []
    assert measured_pollutants("gasoline", {}, POLICY) == set()


@pytest.mark.parametrize("fuel", [None, "electric", "hydrogen"])
def test_unknown_fuel_is_none(fuel: str | None) -> None:
    assert exceeded_pollutants(fuel, {"no_ppm": 9999.0}, POLICY) is None
    assert measured_pollutants(fuel, {"no_ppm": 9999.0}, POLICY) == set()


def test_a_fuel_listed_without_limits_never_exceeds() -> None:
    policy = Policy(limits={**POLICY.limits, "electric": {}})
    assert exceeded_pollutants("electric", {"no_ppm": 9999.0}, policy) == []


def test_policy_limits_override() -> None:
    policy = Policy(limits={"diesel": {"no_ppm": 1000.0}})
    assert exceeded_pollutants("diesel", {"no_ppm": 1200.0, "opacity_pct": 90.0}, policy) == [
        "no_ppm"
    ]
    assert exceeded_pollutants("gasoline", {"no_ppm": 1200.0}, policy) is None


def test_measured_pollutants() -> None:
    measurements = {"opacity_pct": 0.0, "no_ppm": 820.0, "ringelmann": None, "co_pct": 1.0}
    assert measured_pollutants("diesel", measurements, POLICY) == {"opacity_pct", "no_ppm"}


POLLUTANTS = ["opacity_pct", "no_ppm", "ringelmann", "co_pct", "hc_ppm", "co2_pct"]
measurement_maps = st.dictionaries(
    st.sampled_from(POLLUTANTS),
    st.none() | st.floats(allow_infinity=True, allow_nan=True),
)


@given(st.sampled_from(FUELS), measurement_maps)
def test_exceeded_is_a_subset_of_measured(fuel: str, measurements: dict) -> None:
    exceeded = exceeded_pollutants(fuel, measurements, POLICY)
    assert exceeded is not None
    assert set(exceeded) <= measured_pollutants(fuel, measurements, POLICY)
    assert exceeded == sorted(exceeded)
    for p in exceeded:
        assert measurements[p] > POLICY.limits[fuel][p]
