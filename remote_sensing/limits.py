"""Emission limits per fuel type (DOMAIN.md section 2): strictly above the limit exceeds."""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.settings import Policy


def limits_for(fuel: str | None, policy: Policy) -> dict[str, float]:
    """The pollutant limits of a fuel; {} for an unknown fuel or one without limits."""
    if fuel is None:
        return {}
    return dict(policy.limits.get(fuel, {}))


def _value(measurements: Mapping[str, float | None], pollutant: str) -> float | None:
    # A NaN is a failed reading, not a value: it must neither pass nor exceed.
    value = measurements.get(pollutant)
    if value is None or math.isnan(value):
        return None
    return value


def measured_pollutants(
    fuel: str | None, measurements: Mapping[str, float | None], policy: Policy
) -> set[str]:
    """The limited pollutants of the fuel that this event actually measured."""
    return measured_of(limits_for(fuel, policy), measurements)


def measured_of(limit_table: Mapping[str, float], measurements: Mapping[str, float | None]) -> set[str]:
    """The pollutants of a stored limit table (an event's own) that the event measured."""
    return {p for p in limit_table if _value(measurements, p) is not None}


def exceeded_pollutants(
    fuel: str | None, measurements: Mapping[str, float | None], policy: Policy
) -> list[str] | None:
    """Sorted pollutants strictly above their limit; None when the fuel has no limit table.

    None (fuel absent or not in ``policy.limits``) means the verdict is ``invalid`` with
    ``fuel_type_unknown``; electric vehicles never get here, validity rejects them first.
    """
    if fuel is None or fuel not in policy.limits:
        return None
    limits = policy.limits[fuel]
    return sorted(
        p
        for p, limit in limits.items()
        if (value := _value(measurements, p)) is not None and value > limit
    )
