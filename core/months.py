"""Calendar-month arithmetic on the first day of a month: plain functions, no database."""

from __future__ import annotations

from datetime import date, datetime


def month_start(at: date | datetime) -> date:
    """The first day of `at`'s month."""
    return date(at.year, at.month, 1)


def next_month(month: date) -> date:
    """The first day of the month after `month`'s."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def add_months(month: date, n: int) -> date:
    """The first day of the month `n` months after (or, negative, before) `month`'s."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)
