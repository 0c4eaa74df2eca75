"""The plans' targets at their edges: periods, exactly the quota, exactly the share."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcement.targets import Period, at_least, heating_season, month_of, share_at_least, whole_months

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


@pytest.mark.parametrize(("first", "last", "months", "parts"), [
    # the default heating season: whole months only
    (date(2026, 10, 1), date(2027, 3, 31),
     [date(2026, m, 1) for m in (10, 11, 12)] + [date(2027, m, 1) for m in (1, 2, 3)], []),
    (date(2026, 11, 1), date(2026, 11, 30), [date(2026, 11, 1)], []),
    (date(2026, 11, 2), date(2026, 11, 30), [], [(date(2026, 11, 2), date(2026, 11, 30))]),  # a day short
    (date(2026, 11, 1), date(2026, 11, 29), [], [(date(2026, 11, 1), date(2026, 11, 29))]),
    (date(2026, 11, 15), date(2027, 1, 10), [date(2026, 12, 1)],
     [(date(2026, 11, 15), date(2026, 11, 30)), (date(2027, 1, 1), date(2027, 1, 10))]),
    (date(2028, 2, 1), date(2028, 2, 29), [date(2028, 2, 1)], []),  # a leap February
])
def test_whole_months_and_the_parts_outside_them(first, last, months, parts):
    assert whole_months(Period(first, last)) == (months, [Period(*p) for p in parts])


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(0, 800))
def test_whole_months_and_parts_cover_the_period_once(first, days):
    period = Period(first, date.fromordinal(first.toordinal() + days))
    months, parts = whole_months(period)
    covered = [d for m in months for d in range(m.toordinal(), month_of(m).last.toordinal() + 1)]
    covered += [d for p in parts for d in range(p.first.toordinal(), p.last.toordinal() + 1)]
    assert sorted(covered) == list(range(period.first.toordinal(), period.last.toordinal() + 1))
