"""The plans' supervision targets as plain rules: periods and whether a figure meets its target.

"不得少于" and "不低于" include the number itself: exactly 60 vehicles, or exactly 80% of the
diesel fleet, meets the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from core.months import month_start, next_month


@dataclass(frozen=True)
class Period:
    """Local calendar days `first` to `last`, both included."""

    first: date
    last: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as an instant range [start, end) in the local time zone."""
        return datetime.combine(self.first, time(), tz), datetime.combine(self.last + timedelta(days=1), time(), tz)


def month_of(first: date) -> Period:
    return Period(month_start(first), next_month(first) - timedelta(days=1))


def whole_months(period: Period) -> tuple[list[date], list[Period]]:
    """The calendar months `period` covers whole (their first days, in order) and the parts
    of it outside them (a period within one month is one part)."""
    month = period.first if period.first.day == 1 else next_month(period.first)
    months = []
    while next_month(month) - timedelta(days=1) <= period.last:
        months.append(month)
        month = next_month(month)
    if not months:
        return [], [period]
    parts = [Period(period.first, months[0] - timedelta(days=1))] if period.first < months[0] else []
    return months, [*parts, *([Period(month, period.last)] if month <= period.last else [])]


def heating_season(day: date, start: tuple[int, int], end: tuple[int, int]) -> Period:
    """The heating season containing `day`, or the last one before it when `day` is outside
    every season (so a summer view shows how the past winter ended)."""
    began = date(day.year, *start)
    if day >= began:
        return Period(began, date(day.year + 1, *end))
    return Period(date(day.year - 1, *start), date(day.year, *end))


def at_least(count: int, target: int) -> bool:
    return count >= target


def share_at_least(part: int, whole: int, target: float) -> bool | None:
    """part / whole >= target, exactly (no float rounding at the edge); None without a whole."""
    if whole <= 0:
        return None
    return Fraction(part, whole) >= Fraction(str(target))


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
