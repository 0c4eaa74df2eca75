from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from remote_sensing.judgement import Judgement, judge, months_before

TZ = ZoneInfo("Asia/Shanghai")
POLICY = Policy()
T0 = datetime(2026, 3, 15, 10, 0, tzinfo=TZ)


def exceed(prev: dict | None, at: datetime, *pollutants: str, policy: Policy = POLICY) -> Judgement:
    return judge(prev, at, set(pollutants), set(pollutants), policy, TZ)


def passing(prev: dict | None, at: datetime, *pollutants: str) -> Judgement:
    return judge(prev, at, set(pollutants), set(), POLICY, TZ)


# months_before -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "months", "expected"),
    [
        (datetime(2026, 9, 15, 10, 0, tzinfo=TZ), 6, datetime(2026, 3, 15, 10, 0, tzinfo=TZ)),
        (datetime(2026, 8, 31, 12, 0, tzinfo=TZ), 6, datetime(2026, 2, 28, 12, 0, tzinfo=TZ)),
        (datetime(2028, 8, 31, 12, 0, tzinfo=TZ), 6, datetime(2028, 2, 29, 12, 0, tzinfo=TZ)),
        (datetime(2026, 3, 31, 8, 0, tzinfo=TZ), 6, datetime(2025, 9, 30, 8, 0, tzinfo=TZ)),
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=TZ),
            1,
            datetime(2026, 11, 30, 23, 59, 59, tzinfo=TZ),
        ),
        (datetime(2026, 1, 10, 0, 0, tzinfo=TZ), 1, datetime(2025, 12, 10, 0, 0, tzinfo=TZ)),
        (datetime(2026, 1, 10, 0, 0, tzinfo=TZ), 12, datetime(2025, 1, 10, 0, 0, tzinfo=TZ)),
        (datetime(2026, 1, 10, 0, 0, tzinfo=TZ), 25, datetime(2023, 12, 10, 0, 0, tzinfo=TZ)),
        (datetime(2026, 5, 31, 0, 0, tzinfo=TZ), 0, datetime(2026, 5, 31, 0, 0, tzinfo=TZ)),
    ],
)
def test_months_before(dt: datetime, months: int, expected: datetime) -> None:
    assert months_before(dt, months, TZ) == expected


def test_months_before_counts_on_the_local_calendar() -> None:
    # 2026-08-31T20:00Z is 2026-09-01T04:00 in Shanghai: six local months earlier is
    # March 1st, not the February 28th a UTC calendar would give.
    utc = datetime(2026, 8, 31, 20, 0, tzinfo=UTC)
    result = months_before(utc, 6, TZ)
    assert result == datetime(2026, 3, 1, 4, 0, tzinfo=TZ)
    assert result.tzinfo == TZ


def test_months_before_rejects_naive() -> None:
    with pytest.raises(ValueError):
        months_before(datetime(2026, 8, 31), 6, TZ)


# judge: the run ------------------------------------------------------------------------


def test_first_exceedance_is_a_warning() -> None:
    j = exceed(None, T0, "no_ppm")
    assert j == Judgement(
        runs={"no_ppm": {"count": 1, "first": T0.isoformat()}}, judged=[], warnings=["no_ppm"]
    )


def test_second_exceedance_is_judged_and_resets() -> None:
    first = exceed(None, T0, "no_ppm")
    second = exceed(first.runs, T0 + timedelta(days=1), "no_ppm")
    assert second == Judgement(runs={}, judged=["no_ppm"], warnings=[])
    third = exceed(second.runs, T0 + timedelta(days=2), "no_ppm")
    assert third.warnings == ["no_ppm"] and third.judged == []
    assert third.runs["no_ppm"]["count"] == 1
    fourth = exceed(third.runs, T0 + timedelta(days=3), "no_ppm")
    assert fourth.judged == ["no_ppm"]


def test_longer_run_length() -> None:
    policy = Policy(judgement_run_length=3)
    j1 = exceed(None, T0, "co_pct", policy=policy)
    j2 = exceed(j1.runs, T0 + timedelta(hours=1), "co_pct", policy=policy)
    assert j2.warnings == ["co_pct"] and j2.judged == []
    assert j2.runs == {"co_pct": {"count": 2, "first": T0.isoformat()}}
    j3 = exceed(j2.runs, T0 + timedelta(hours=2), "co_pct", policy=policy)
    assert (j3.judged, j3.warnings, j3.runs) == (["co_pct"], [], {})


def test_run_length_one_judges_at_once() -> None:
    j = exceed(None, T0, "no_ppm", policy=Policy(judgement_run_length=1))
    assert (j.judged, j.warnings, j.runs) == (["no_ppm"], [], {})


def test_a_pass_breaks_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = passing(j1.runs, T0 + timedelta(days=1), "no_ppm")
    assert (j2.runs, j2.judged, j2.warnings) == ({}, [], [])
    j3 = exceed(j2.runs, T0 + timedelta(days=2), "no_ppm")
    assert j3.warnings == ["no_ppm"] and j3.judged == []


def test_a_measurement_without_the_pollutant_keeps_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = passing(j1.runs, T0 + timedelta(days=1), "co_pct")  # no_ppm not measured
    assert j2.runs == j1.runs
    j3 = exceed(j2.runs, T0 + timedelta(days=2), "no_ppm")
    assert j3.judged == ["no_ppm"]


def test_another_pollutant_does_not_continue_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = judge(j1.runs, T0 + timedelta(days=1), {"no_ppm", "co_pct"}, {"co_pct"}, POLICY, TZ)
    assert j2.runs == {"co_pct": {"count": 1, "first": (T0 + timedelta(days=1)).isoformat()}}
    assert j2.warnings == ["co_pct"] and j2.judged == []


def test_pollutants_are_judged_independently_and_sorted() -> None:
    j1 = judge(None, T0, {"no_ppm", "hc_ppm", "co_pct"}, {"no_ppm"}, POLICY, TZ)
    j2 = judge(
        j1.runs,
        T0 + timedelta(days=1),
        {"no_ppm", "hc_ppm", "co_pct"},
        {"no_ppm", "hc_ppm", "co_pct"},
        POLICY,
        TZ,
    )
    assert j2.judged == ["no_ppm"]
    assert j2.warnings == ["co_pct", "hc_ppm"]
    assert set(j2.runs) == {"co_pct", "hc_ppm"}


def test_an_exceeded_pollutant_counts_as_measured() -> None:
    j = judge(None, T0, set(), {"no_ppm"}, POLICY, TZ)
    assert j.warnings == ["no_ppm"]


# judge: the window ---------------------------------------------------------------------


def run_from(first: datetime, count: int = 1) -> dict:
    return {"no_ppm": {"count": count, "first": first.isoformat()}}


def test_exactly_six_months_is_within() -> None:
    j = exceed(run_from(T0), datetime(2026, 9, 15, 10, 0, tzinfo=TZ), "no_ppm")
    assert j.judged == ["no_ppm"]


def test_one_second_more_starts_a_new_run() -> None:
    at = datetime(2026, 9, 15, 10, 0, 1, tzinfo=TZ)
    j = exceed(run_from(T0), at, "no_ppm")
    assert j.judged == [] and j.warnings == ["no_ppm"]
    assert j.runs == {"no_ppm": {"count": 1, "first": at.isoformat()}}


def test_month_end_clamping_in_the_window() -> None:
    at = datetime(2026, 8, 31, 12, 0, tzinfo=TZ)
    assert exceed(run_from(datetime(2026, 2, 28, 12, 0, tzinfo=TZ)), at, "no_ppm").judged == [
        "no_ppm"
    ]
    late = datetime(2026, 2, 28, 11, 59, 59, tzinfo=TZ)
    assert exceed(run_from(late), at, "no_ppm").judged == []


def test_leap_year_clamping_in_the_window() -> None:
    at = datetime(2028, 8, 31, 12, 0, tzinfo=TZ)
    assert exceed(run_from(datetime(2028, 2, 29, 12, 0, tzinfo=TZ)), at, "no_ppm").judged == [
        "no_ppm"
    ]
    assert exceed(run_from(datetime(2028, 2, 28, 12, 0, tzinfo=TZ)), at, "no_ppm").judged == []


def test_window_uses_the_local_calendar() -> None:
    # Measured 2026-09-01T04:00 local (2026-08-31T20:00Z): the window opens 2026-03-01T04:00
    # local, so a run that began on 2026-02-28 is stale though a UTC calendar would keep it.
    at = datetime(2026, 8, 31, 20, 0, tzinfo=UTC)
    stale = datetime(2026, 2, 28, 20, 0, tzinfo=UTC)  # 2026-03-01T04:00 local
    assert exceed(run_from(stale), at, "no_ppm").judged == ["no_ppm"]
    assert exceed(run_from(stale - timedelta(seconds=1)), at, "no_ppm").judged == []


def test_window_months_override() -> None:
    policy = Policy(judgement_window_months=1)
    at = T0 + timedelta(days=40)
    assert exceed(run_from(T0), at, "no_ppm", policy=policy).judged == []
    assert exceed(run_from(T0), at, "no_ppm").judged == ["no_ppm"]


def test_stale_run_survives_a_measurement_without_the_pollutant() -> None:
    prev = run_from(T0)
    j = passing(prev, T0 + timedelta(days=400), "co_pct")
    assert j.runs == prev


def test_first_of_a_continued_run_is_kept() -> None:
    policy = Policy(judgement_run_length=3)
    first = datetime(2026, 1, 1, 0, 0, tzinfo=TZ)
    j = exceed(run_from(first), datetime(2026, 6, 30, tzinfo=TZ), "no_ppm", policy=policy)
    assert j.runs == {"no_ppm": {"count": 2, "first": first.isoformat()}}
    # The third is more than 6 months after the first: the run starts over.
    j3 = exceed(j.runs, datetime(2026, 7, 2, tzinfo=TZ), "no_ppm", policy=policy)
    assert j3.judged == [] and j3.runs["no_ppm"]["count"] == 1


# judge: the state ----------------------------------------------------------------------


def test_first_is_stored_in_local_time() -> None:
    at = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)
    j = exceed(None, at, "no_ppm")
    assert j.runs["no_ppm"]["first"] == "2026-03-15T10:00:00+08:00"


def test_runs_are_json_round_trippable() -> None:
    j1 = exceed(None, T0, "no_ppm", "co_pct")
    stored = json.loads(json.dumps(j1.runs))
    j2 = exceed(stored, T0 + timedelta(days=1), "no_ppm")
    assert j2.judged == ["no_ppm"]
    assert j2.runs == {"co_pct": j1.runs["co_pct"]}


def test_input_runs_are_not_modified() -> None:
    prev = run_from(T0)
    snapshot = json.loads(json.dumps(prev))
    exceed(prev, T0 + timedelta(days=1), "no_ppm", policy=Policy(judgement_run_length=3))
    passing(prev, T0 + timedelta(days=1), "no_ppm")
    assert prev == snapshot


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError):
        exceed(None, datetime(2026, 3, 15), "no_ppm")
    with pytest.raises(ValueError):
        exceed({"no_ppm": {"count": 1, "first": "2026-03-15T10:00:00"}}, T0, "no_ppm")


# properties ----------------------------------------------------------------------------

POLLUTANTS = ["co_pct", "hc_ppm", "no_ppm"]
events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=120 * 24 * 3600),  # seconds since the previous event
        st.sets(st.sampled_from(POLLUTANTS)),
        st.sets(st.sampled_from(POLLUTANTS)),
    ),
    max_size=30,
)


@given(events, st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=12))
def test_judge_invariants(seq: list, run_length: int, window: int) -> None:
    policy = Policy(judgement_run_length=run_length, judgement_window_months=window)
    runs: dict = {}
    at = T0
    for gap, measured, exceeded_raw in seq:
        at = at + timedelta(seconds=gap)
        exceeded = exceeded_raw & measured
        j = judge(runs, at, measured, exceeded, policy, TZ)
        assert not set(j.judged) & set(j.warnings)
        assert set(j.judged) | set(j.warnings) == exceeded
        assert j.judged == sorted(j.judged) and j.warnings == sorted(j.warnings)
        for p in measured - exceeded:
            assert p not in j.runs  # a pass always removes the run
        for p in set(POLLUTANTS) - measured:
            assert j.runs.get(p) == runs.get(p)  # unmeasured: untouched
        for p in j.judged:
            assert p not in j.runs
        for run in j.runs.values():
            assert 1 <= run["count"] < run_length
        for p in j.warnings:
            first = datetime.fromisoformat(j.runs[p]["first"])
            assert months_before(at, window, TZ) <= first <= at
        assert json.loads(json.dumps(j.runs)) == j.runs
        runs = j.runs
