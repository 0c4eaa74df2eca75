"""Which inspection cycle a day belongs to, at every edge."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from enforcement.cycles import Window, by_window, window_of, years_before

A = (date(2025, 3, 10), date(2026, 3, 10))
B = (date(2026, 3, 10), date(2027, 3, 10))


def test_no_cycle_on_record_no_window():
    assert window_of(date(2026, 5, 1), []) is None


def test_last_on_is_inside_next_due_on_is_the_next_cycle():
    assert window_of(date(2026, 3, 10), [A, B]) == Window(*B)
    assert window_of(date(2026, 3, 9), [A, B]) == Window(*A)  # the last day of a cycle
    assert window_of(date(2025, 3, 10), [A, B]) == Window(*A)


def test_overdue_days_form_an_open_cycle_from_next_due_on():
    assert window_of(date(2027, 3, 10), [B]) == Window(date(2027, 3, 10), None)
    assert window_of(date(2029, 1, 1), [B]) == Window(date(2027, 3, 10), None)
    assert window_of(date(2027, 3, 9), [B]) == Window(*B)
    assert Window(date(2027, 3, 10), None).contains(date(2099, 1, 1))


def test_a_late_renewal_closes_the_overdue_cycle_where_it_begins():
    late = (date(2027, 6, 1), date(2028, 6, 1))
    assert window_of(date(2027, 3, 10), [B, late]) == Window(date(2027, 3, 10), date(2027, 6, 1))
    assert window_of(date(2027, 5, 31), [B, late]) == Window(date(2027, 3, 10), date(2027, 6, 1))
    assert window_of(date(2027, 6, 1), [B, late]) == Window(*late)
    assert Window(date(2027, 3, 10), date(2027, 6, 1)).last_day == date(2027, 5, 31)


def test_an_early_renewal_ends_the_old_cycle_where_the_new_one_begins():
    early = (date(2027, 1, 15), date(2028, 1, 15))
    assert window_of(date(2027, 1, 14), [B, early]) == Window(date(2026, 3, 10), date(2027, 1, 15))
    assert window_of(date(2027, 1, 15), [B, early]) == Window(*early)


def test_days_before_the_first_cycle_are_one_year_cycles_counted_back():
    assert window_of(date(2026, 3, 9), [B]) == Window(date(2025, 3, 10), date(2026, 3, 10))
    assert window_of(date(2025, 3, 10), [B]) == Window(date(2025, 3, 10), date(2026, 3, 10))
    assert window_of(date(2025, 3, 9), [B]) == Window(date(2024, 3, 10), date(2025, 3, 10))
    assert window_of(date(2019, 7, 1), [B]) == Window(date(2019, 3, 10), date(2020, 3, 10))


def test_a_leap_day_counts_back_to_february_28():
    leap = (date(2028, 2, 29), date(2029, 2, 28))
    assert years_before(date(2028, 2, 29), 1) == date(2027, 2, 28)
    assert window_of(date(2027, 3, 1), [leap]) == Window(date(2027, 2, 28), date(2028, 2, 29))


def test_order_given_does_not_matter():
    assert window_of(date(2026, 6, 1), [B, A]) == window_of(date(2026, 6, 1), [A, B])


cycles_st = st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 500)), min_size=1, max_size=5).map(
    lambda pairs: [(date(2024, 1, 1) + timedelta(days=s), date(2024, 1, 1) + timedelta(days=s + n))
                   for s, n in pairs])


@given(cycles_st, st.integers(-1500, 3500))
def test_every_day_has_exactly_one_window_and_windows_never_overlap(cycles, offset):
    day = date(2024, 1, 1) + timedelta(days=offset)
    window = window_of(day, cycles)
    assert window is not None and window.contains(day)
    # Every day of that window answers the same window: windows partition the calendar.
    for probe in (window.start, window.last_day or window.start + timedelta(days=400)):
        assert window_of(probe, cycles) == window


@given(cycles_st)
def test_a_later_cycle_never_moves_an_earlier_window_start(cycles):
    """Renewals (cycles beginning after every one on record) keep the windows' starts, so the
    entries keyed by them stay the same entries."""
    latest = max(last_on for last_on, _ in cycles)
    renewal = (latest + timedelta(days=30), latest + timedelta(days=400))
    for offset in range(-400, 2000, 37):
        day = date(2024, 1, 1) + timedelta(days=offset)
        if day < renewal[0]:
            assert window_of(day, cycles).start == window_of(day, cycles + [renewal]).start


def test_by_window_groups_positions():
    days = [date(2026, 3, 9), date(2026, 3, 10), date(2026, 4, 1)]
    assert by_window(days, [A, B]) == {Window(*A): [0], Window(*B): [1, 2]}
