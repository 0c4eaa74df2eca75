"""Which inspection cycle a day belongs to (DOMAIN.md section 7, "Registry over time"). Pure.

A strike belongs to the cycle that contains its detection day. The cycles on record are
taken in `last_on` order; a cycle renewed early ends where the next begins. Days after a
`next_due_on` with no newer cycle begun form an open cycle starting on that day (overdue
never makes a vehicle immune), which ends when a newer cycle begins. Days before the first
cycle on record belong to cycles of one year counted back from its `last_on`. A vehicle
with no cycle at all has none (the caller keeps the rolling window).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, order=True)
class Window:
    """[start, end) of a cycle; `end` None: open (overdue, no newer cycle yet)."""

    start: date
    end: date | None

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    @property
    def last_day(self) -> date | None:
        return date.fromordinal(self.end.toordinal() - 1) if self.end else None


def years_before(day: date, years: int) -> date:
    """The same day `years` earlier; Feb 29 falls back to Feb 28."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def window_of(day: date, cycles: Iterable[tuple[date, date]]) -> Window | None:
    """The cycle containing `day`, from (last_on, next_due_on) pairs; None without any."""
    ordered = sorted(set(cycles))
    if not ordered:
        return None
    first = ordered[0][0]
    if day < first:
        back = max(1, first.year - day.year)
        while years_before(first, back) > day:
            back += 1
        while back > 1 and years_before(first, back - 1) <= day:
            back -= 1
        return Window(years_before(first, back), years_before(first, back - 1))
    for i, (last_on, next_due_on) in enumerate(ordered):
        newer = ordered[i + 1][0] if i + 1 < len(ordered) else None
        end = next_due_on if newer is None else min(next_due_on, newer)
        if day < end:  # and day >= last_on: earlier cycles did not contain it
            return Window(last_on, end)
        if newer is None:
            return Window(end, None)
        if day < newer:
            return Window(end, newer)  # overdue until the renewal
    raise AssertionError("unreachable: the last cycle answers every later day")


def by_window(days: Sequence[date], cycles: Iterable[tuple[date, date]]) -> dict[Window, list[int]]:
    """Positions of `days` grouped by the cycle containing each (cycles must be on record)."""
    pairs = sorted(set(cycles))
    grouped: dict[Window, list[int]] = {}
    for i, day in enumerate(days):
        window = window_of(day, pairs)
        assert window is not None
        grouped.setdefault(window, []).append(i)
    return grouped
