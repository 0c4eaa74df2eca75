"""The pure rules behind strikes and listings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from enforcement.listings import cycle_period, lacks_remote_obd, ratio_reached, rolling_periods, year_bounds

D = date(2026, 5, 1)
LAST, NEXT = date(2026, 3, 10), date(2027, 3, 10)


def days(*offsets: int) -> list[tuple[date, int]]:
    return [(D + timedelta(days=o), i + 1) for i, o in enumerate(offsets)]


def test_two_strikes_in_a_cycle_do_not_list_three_do():
    assert cycle_period(days(0, 1), LAST, NEXT, 3) is None
    period = cycle_period(days(0, 1, 2), LAST, NEXT, 3)
    assert period is not None and period.evidence == (1, 2, 3)
    assert (period.start, period.end) == (LAST, NEXT - timedelta(days=1))


def test_cycle_bounds_last_on_counts_next_due_on_does_not():
    before = [(LAST - timedelta(days=1), 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3)]
    assert cycle_period(before, LAST, NEXT, 3) is None
    on_first_day = [(LAST, 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3)]
    assert cycle_period(on_first_day, LAST, NEXT, 3).evidence == (1, 2, 3)
    on_due_day = [(NEXT, 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3)]
    assert cycle_period(on_due_day, LAST, NEXT, 3) is None


def test_rolling_window_is_365_days_up_to_the_strike():
    assert rolling_periods(days(0, 100, 365), 365, 3) == []  # day 0 is 366 days before day 365
    (period,) = rolling_periods(days(0, 100, 364), 365, 3)
    assert (period.start, period.end, period.evidence) == (D, D + timedelta(days=364), (1, 2, 3))


def test_rolling_strikes_ground_one_listing_each():
    periods = rolling_periods(days(0, 1, 2, 3, 4, 5), 365, 3)
    assert [p.evidence for p in periods] == [(1, 2, 3), (4, 5, 6)]
    assert periods[1].start == D + timedelta(days=3)  # after the previous period, never overlapping


@given(st.lists(st.integers(0, 900), unique=True, max_size=12), st.integers(0, 900))
def test_adding_a_strike_never_loses_or_delays_a_rolling_period(offsets, extra):
    base = days(*offsets)
    more = base + [(D + timedelta(days=extra), 999)] if extra not in offsets else base
    before, after = rolling_periods(base, 365, 3), rolling_periods(more, 365, 3)
    assert len(after) >= len(before)
    assert all(a.end <= b.end for a, b in zip(after, before, strict=False))


@pytest.mark.parametrize(("e", "n", "listed"), [
    (1, 10, True), (1, 11, False), (2, 20, True), (2, 21, False), (0, 1, False), (1, 1, True), (3, 30, True),
    (0, 0, False),
])
def test_fleet_ratio_is_exact(e, n, listed):
    assert ratio_reached(e, n, 0.10) is listed


def test_fleet_ratio_follows_the_policy_threshold():
    assert ratio_reached(1, 7, 0.142857) and not ratio_reached(1, 8, 0.15)


def test_year_bounds():
    assert year_bounds(2026) == (date(2026, 1, 1), date(2026, 12, 31))


@pytest.mark.parametrize(("fuel", "category", "obd", "expected"), [
    ("diesel", "N3", False, True), ("diesel", "N2", None, True), ("diesel", "N3", True, False),
    ("diesel", "N1", False, False), ("gasoline", "N3", False, False), ("diesel", None, None, False),
])
def test_heavy_diesel_without_remote_obd(fuel, category, obd, expected):
    assert lacks_remote_obd(fuel, category, obd, Policy()) is expected
