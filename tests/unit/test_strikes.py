"""The pure rules behind strikes and listings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from enforcement.listings import (
    StrikeFact,
    after_delisting,
    cycle_periods,
    lacks_remote_obd,
    list_kind_for,
    ratio_reached,
    rolling_periods,
    year_bounds,
)

D = date(2026, 5, 1)
LAST, NEXT = date(2026, 3, 10), date(2027, 3, 10)


def days(*offsets: int) -> list[tuple[date, int]]:
    return [(D + timedelta(days=o), i + 1) for i, o in enumerate(offsets)]


def facts(*pairs: tuple[date, int]) -> list[StrikeFact]:
    return [StrikeFact(day, vid, datetime.combine(day, time(9), UTC), "operating") for day, vid in pairs]


def test_two_strikes_in_a_cycle_do_not_list_three_do():
    assert cycle_periods(facts(*days(0, 1)), [(LAST, NEXT)], 3, {}) == []
    ((period, counted),) = cycle_periods(facts(*days(0, 1, 2)), [(LAST, NEXT)], 3, {})
    assert period.evidence == (1, 2, 3) and len(counted) == 3
    assert (period.start, period.end) == (LAST, NEXT - timedelta(days=1))


def test_cycle_bounds_last_on_counts_next_due_on_does_not():
    before = facts((LAST - timedelta(days=1), 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3))
    assert cycle_periods(before, [(LAST, NEXT)], 3, {}) == []
    on_first_day = facts((LAST, 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3))
    assert cycle_periods(on_first_day, [(LAST, NEXT)], 3, {})[0][0].evidence == (1, 2, 3)
    on_due_day = facts((NEXT, 1), (LAST + timedelta(days=5), 2), (LAST + timedelta(days=6), 3))
    assert cycle_periods(on_due_day, [(LAST, NEXT)], 3, {}) == []


def test_three_strikes_in_an_old_cycle_list_that_cycle():
    renewed = [(LAST, NEXT), (NEXT, date(2028, 3, 10))]
    late = facts((NEXT - timedelta(days=3), 1), (NEXT - timedelta(days=2), 2), (NEXT - timedelta(days=1), 3),
                 (NEXT, 4))
    ((period, _),) = cycle_periods(late, renewed, 3, {})
    assert (period.start, period.end, period.evidence) == (LAST, NEXT - timedelta(days=1), (1, 2, 3))


def test_after_a_delisting_only_later_strikes_count():
    strikes = facts(*days(0, 1, 2, 3, 4))
    delisted = {LAST: strikes[2].detected_at + timedelta(hours=1)}  # after the third strike
    assert cycle_periods(strikes, [(LAST, NEXT)], 3, delisted) == []  # two strikes after it
    more = strikes + facts((D + timedelta(days=5), 6))
    ((period, _),) = cycle_periods(more, [(LAST, NEXT)], 3, delisted)
    assert period.evidence == (4, 5, 6)
    at_the_instant = {LAST: strikes[3].detected_at}  # detected at the very instant: not after
    assert after_delisting(strikes, at_the_instant[LAST]) == strikes[4:]


@pytest.mark.parametrize("known, current, registered, color, kind", [
    (["operating"], "non_operating", True, "yellow", "blacklist"),  # the use at detection decides
    (["non_operating", "operating"], "non_operating", True, "blue", "blacklist"),  # the latest strike's
    ([None], "operating", True, "blue", "blacklist"),  # provisional then, registered operating since
    ([None], "non_operating", True, "yellow", "key_supervision"),
    ([None], None, False, "yellow", "blacklist"),  # outside, yellow plate: presumed operating
    ([None], None, False, "blue", "key_supervision"),
    ([None], None, True, "yellow", "key_supervision"),  # registered with no use nature: no presumption
])
def test_list_kind_follows_the_use_nature(known, current, registered, color, kind):
    strikes = [StrikeFact(D + timedelta(days=i), i, datetime(2026, 5, 1, tzinfo=UTC), use)
               for i, use in enumerate(known)]
    assert list_kind_for(strikes, current, registered, color) == kind


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
