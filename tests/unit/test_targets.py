"""The plans' targets at their edges: periods, exactly the quota, exactly the share."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcement.targets import Period, at_least, heating_season, month_of, share_at_least

SEASON = (10, 1), (3, 31)


@pytest.mark.parametrize(("day", "first", "last"), [
    (date(2026, 10, 1), date(2026, 10, 1), date(2027, 3, 31)),  # first day of the season
    (date(2026, 9, 30), date(2025, 10, 1), date(2026, 3, 31)),  # the day before: the last season
    (date(2027, 3, 31), date(2026, 10, 1), date(2027, 3, 31)),  # last day
    (date(2027, 4, 1), date(2026, 10, 1), date(2027, 3, 31)),  # after it: still the last season
    (date(2026, 12, 31), date(2026, 10, 1), date(2027, 3, 31)),
    (date(2027, 1, 1), date(2026, 10, 1), date(2027, 3, 31)),  # across the new year
])
def test_heating_season(day, first, last):
    assert heating_season(day, *SEASON) == Period(first, last)


def test_a_period_is_local_days_as_instants():
    tz = ZoneInfo("Asia/Shanghai")
    start, end = month_of(date(2026, 2, 1)).bounds(tz)
    assert (start, end) == (datetime(2026, 2, 1, tzinfo=tz), datetime(2026, 3, 1, tzinfo=tz))
    assert month_of(date(2026, 12, 1)) == Period(date(2026, 12, 1), date(2026, 12, 31))


def test_quota_includes_the_number_itself():
    assert at_least(60, 60) and not at_least(59, 60) and at_least(61, 60)


def test_share_includes_the_share_itself():
    assert share_at_least(8, 10, 0.8) is True
    assert share_at_least(7, 10, 0.8) is False
    assert share_at_least(4, 5, 0.8) is True
    assert share_at_least(799, 1000, 0.8) is False
    assert share_at_least(0, 0, 0.8) is None  # no fleet: no target to meet


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.integers(0, 100))
def test_share_is_exact_at_every_percentage(part, whole, percent):
    assert share_at_least(part, whole, percent / 100) is (part * 100 >= percent * whole)
