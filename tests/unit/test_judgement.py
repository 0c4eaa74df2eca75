"""The pure judgement rule at its edges: natural months, run members, the minimum gap."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Policy
from remote_sensing.judgement import Judgement, Measurement, Reset, judge, replay, window_end, within_window

TZ = ZoneInfo("Asia/Shanghai")
POLICY = Policy()
T0 = datetime(2026, 3, 15, 10, 0, tzinfo=TZ)
_ids = itertools.count(1)


def exceed(prev: dict | None, at: datetime, *pollutants: str, policy: Policy = POLICY, eid: int | None = None
           ) -> Judgement:
    return judge(prev, at, eid or next(_ids), set(pollutants), set(pollutants), policy, TZ)


def passing(prev: dict | None, at: datetime, *pollutants: str) -> Judgement:
    return judge(prev, at, next(_ids), set(pollutants), set(), POLICY, TZ)


def local(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


# window_end: the Civil Code count ---------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 2, 28), 6, date(2026, 8, 28)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),  # leap year
        (date(2026, 3, 31), 6, date(2026, 9, 30)),
        (date(2026, 9, 15), 6, date(2027, 3, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 12, 31), 12, date(2027, 12, 31)),
        (date(2026, 5, 10), 0, date(2026, 5, 10)),
    ],
)
def test_window_end(start: date, months: int, end: date) -> None:
    assert window_end(start, months) == end


@pytest.mark.parametrize(
    ("first", "at", "inside"),
    [
        (local(2026, 2, 28, 23, 59), local(2026, 8, 28, 23, 59), True),  # to 24:00 of the end day
        (local(2026, 2, 28, 0, 0), local(2026, 8, 28, 23, 59), True),  # the hour never matters
        (local(2026, 2, 28, 23, 59), local(2026, 8, 29, 0, 0), False),
        (local(2026, 8, 31), local(2027, 2, 28, 23, 59), True),
        (local(2026, 8, 31), local(2027, 3, 1, 0, 0), False),
        (local(2027, 8, 31), local(2028, 2, 29, 23, 59), True),
        (local(2027, 8, 31), local(2028, 3, 1, 0, 0), False),
    ],
)
def test_within_window_domain_examples(first: datetime, at: datetime, inside: bool) -> None:
    assert within_window(first, at, 6, TZ) is inside
    run = {"no_ppm": {"members": [[first.isoformat(), 1]], "last": first.isoformat()}}
    assert (exceed(run, at, "no_ppm").judged == ["no_ppm"]) is inside


def test_window_counts_local_dates() -> None:
    # 2026-02-27T16:30Z is Feb 28 00:30 in Shanghai; 2026-08-28T15:59Z is Aug 28 23:59 local.
    first = datetime(2026, 2, 27, 16, 30, tzinfo=UTC)
    assert within_window(first, datetime(2026, 8, 28, 15, 59, tzinfo=UTC), 6, TZ)
    assert not within_window(first, datetime(2026, 8, 28, 16, 0, tzinfo=UTC), 6, TZ)  # Aug 29 local


def test_window_months_is_the_setting() -> None:
    run = {"no_ppm": {"members": [[T0.isoformat(), 1]], "last": T0.isoformat()}}
    at = local(2026, 4, 16)
    assert exceed(run, at, "no_ppm", policy=Policy(judgement_window_months=1)).judged == []
    assert exceed(run, at, "no_ppm").judged == ["no_ppm"]


# judge: runs ------------------------------------------------------------------------------


def test_first_exceedance_is_a_warning() -> None:
    j = exceed(None, T0, "no_ppm", eid=7)
    assert j == Judgement(runs={"no_ppm": {"members": [[T0.isoformat(), 7]], "last": T0.isoformat()}},
                          judged=[], warnings=["no_ppm"])


def test_second_exceedance_is_judged_names_its_run_and_starts_afresh() -> None:
    first = exceed(None, T0, "no_ppm", eid=1)
    at = T0 + timedelta(days=1)
    second = exceed(first.runs, at, "no_ppm", eid=2)
    assert (second.judged, second.warnings, second.grounds) == (["no_ppm"], [], {"no_ppm": [1, 2]})
    assert second.runs == {"no_ppm": {"members": [], "last": at.isoformat()}}
    third = exceed(second.runs, T0 + timedelta(days=2), "no_ppm")
    assert (third.judged, third.warnings) == ([], ["no_ppm"])


def test_run_length_three_counts_three() -> None:
    policy = Policy(judgement_run_length=3)
    j1 = exceed(None, T0, "co_pct", policy=policy, eid=1)
    j2 = exceed(j1.runs, T0 + timedelta(hours=2), "co_pct", policy=policy, eid=2)
    assert (j2.judged, j2.warnings) == ([], ["co_pct"])
    j3 = exceed(j2.runs, T0 + timedelta(hours=4), "co_pct", policy=policy, eid=3)
    assert (j3.judged, j3.grounds) == (["co_pct"], {"co_pct": [1, 2, 3]})


def test_run_length_one_judges_at_once() -> None:
    j = exceed(None, T0, "no_ppm", policy=Policy(judgement_run_length=1), eid=4)
    assert (j.judged, j.warnings, j.grounds) == (["no_ppm"], [], {"no_ppm": [4]})


def test_run_keeps_members_still_inside_when_the_oldest_leaves() -> None:
    # N = 3: Jan 10, Jun 1, then Jul 20 (Jan 10's window ended Jul 10): Jun 1 stays, the run is 2.
    policy = Policy(judgement_run_length=3)
    j1 = exceed(None, local(2026, 1, 10), "no_ppm", policy=policy, eid=1)
    j2 = exceed(j1.runs, local(2026, 6, 1), "no_ppm", policy=policy, eid=2)
    j3 = exceed(j2.runs, local(2026, 7, 20), "no_ppm", policy=policy, eid=3)
    assert j3.judged == [] and [m[1] for m in j3.runs["no_ppm"]["members"]] == [2, 3]
    j4 = exceed(j3.runs, local(2026, 12, 1), "no_ppm", policy=policy, eid=4)  # Jun 1 + 6 months = Dec 1
    assert (j4.judged, j4.grounds) == (["no_ppm"], {"no_ppm": [2, 3, 4]})


def test_run_with_all_members_out_of_window_starts_over() -> None:
    j1 = exceed(None, local(2026, 1, 10), "no_ppm", eid=1)
    j2 = exceed(j1.runs, local(2026, 7, 11), "no_ppm", eid=2)
    assert (j2.judged, j2.warnings) == ([], ["no_ppm"])
    assert j2.runs["no_ppm"]["members"] == [[local(2026, 7, 11).isoformat(), 2]]


def test_a_pass_breaks_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = passing(j1.runs, T0 + timedelta(days=1), "no_ppm")
    assert j2.runs == {}
    assert exceed(j2.runs, T0 + timedelta(days=2), "no_ppm").warnings == ["no_ppm"]


def test_a_pass_inside_the_min_gap_still_breaks_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = passing(j1.runs, T0 + timedelta(minutes=5), "no_ppm")
    assert j2.runs == {}


def test_a_measurement_without_the_pollutant_keeps_the_run() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = passing(j1.runs, T0 + timedelta(days=1), "co_pct")
    assert j2.runs == j1.runs
    assert exceed(j2.runs, T0 + timedelta(days=2), "no_ppm").judged == ["no_ppm"]


def test_pollutants_are_judged_independently_and_sorted() -> None:
    j1 = judge(None, T0, 1, {"no_ppm", "hc_ppm", "co_pct"}, {"no_ppm"}, POLICY, TZ)
    j2 = judge(j1.runs, T0 + timedelta(days=1), 2, {"no_ppm", "hc_ppm", "co_pct"},
               {"no_ppm", "hc_ppm", "co_pct"}, POLICY, TZ)
    assert (j2.judged, j2.warnings) == (["no_ppm"], ["co_pct", "hc_ppm"])


def test_an_exceeded_pollutant_counts_as_measured() -> None:
    assert judge(None, T0, 1, set(), {"no_ppm"}, POLICY, TZ).warnings == ["no_ppm"]


# judge: the minimum gap -------------------------------------------------------------------


def test_exceedance_inside_min_gap_neither_extends_nor_breaks() -> None:
    j1 = exceed(None, T0, "no_ppm", eid=1)
    j2 = exceed(j1.runs, T0 + timedelta(minutes=59, seconds=59), "no_ppm", eid=2)
    assert (j2.judged, j2.warnings, j2.runs) == ([], [], j1.runs)
    j3 = exceed(j2.runs, T0 + timedelta(minutes=60), "no_ppm", eid=3)  # exactly the gap: counts
    assert (j3.judged, j3.grounds) == (["no_ppm"], {"no_ppm": [1, 3]})


def test_min_gap_is_measured_from_the_last_counted_exceedance() -> None:
    policy = Policy(judgement_run_length=3)
    j1 = exceed(None, T0, "no_ppm", policy=policy, eid=1)
    j2 = exceed(j1.runs, T0 + timedelta(minutes=50), "no_ppm", policy=policy, eid=2)  # skipped
    j3 = exceed(j2.runs, T0 + timedelta(minutes=100), "no_ppm", policy=policy, eid=3)  # 100 after #1: counts
    assert [m[1] for m in j3.runs["no_ppm"]["members"]] == [1, 3]


def test_min_gap_applies_after_a_judgement() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = exceed(j1.runs, T0 + timedelta(days=1), "no_ppm")
    j3 = exceed(j2.runs, T0 + timedelta(days=1, minutes=10), "no_ppm")  # same trip as the judged one
    assert (j3.judged, j3.warnings) == ([], [])
    j4 = exceed(j3.runs, T0 + timedelta(days=1, minutes=60), "no_ppm")
    assert (j4.judged, j4.warnings) == ([], ["no_ppm"])


def test_min_gap_zero_counts_every_exceedance() -> None:
    policy = Policy(judgement_min_gap_minutes=0)
    j1 = exceed(None, T0, "no_ppm", policy=policy)
    assert exceed(j1.runs, T0 + timedelta(minutes=1), "no_ppm", policy=policy).judged == ["no_ppm"]


def test_stale_gap_entries_are_pruned() -> None:
    j1 = exceed(None, T0, "no_ppm")
    j2 = exceed(j1.runs, T0 + timedelta(days=1), "no_ppm")
    later = passing(j2.runs, T0 + timedelta(days=1, minutes=60), "co_pct")
    assert later.runs == {}


# judge: state -----------------------------------------------------------------------------


def test_members_are_stored_in_local_time() -> None:
    j = exceed(None, datetime(2026, 3, 15, 2, 0, tzinfo=UTC), "no_ppm", eid=9)
    assert j.runs["no_ppm"]["members"] == [["2026-03-15T10:00:00+08:00", 9]]


def test_runs_are_json_round_trippable_and_input_untouched() -> None:
    j1 = exceed(None, T0, "no_ppm", "co_pct")
    stored = json.loads(json.dumps(j1.runs))
    snapshot = json.loads(json.dumps(stored))
    j2 = exceed(stored, T0 + timedelta(days=1), "no_ppm")
    assert stored == snapshot
    assert j2.judged == ["no_ppm"] and j2.runs["co_pct"] == j1.runs["co_pct"]


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError):
        exceed(None, datetime(2026, 3, 15), "no_ppm")
    with pytest.raises(ValueError):
        exceed({"no_ppm": {"members": [["2026-03-15T10:00:00", 1]], "last": "2026-03-15T10:00:00"}},
               T0 + timedelta(days=1), "no_ppm")


# replay -----------------------------------------------------------------------------------


def m(at: datetime, eid: int, *exceeded: str, measured: tuple[str, ...] = ("no_ppm",)) -> Measurement:
    return Measurement(at, eid, frozenset(measured) | frozenset(exceeded), frozenset(exceeded))


def test_replay_folds_judge() -> None:
    steps = list(replay([m(T0, 1, "no_ppm"), m(T0 + timedelta(days=1), 2, "no_ppm")], None, POLICY, TZ))
    assert [s.judgement.judged for s in steps] == [[], ["no_ppm"]]


def test_a_reset_ends_every_run() -> None:
    timeline = [m(T0, 1, "no_ppm"), Reset(T0 + timedelta(hours=5), 1), m(T0 + timedelta(days=1), 2, "no_ppm")]
    steps = list(replay(timeline, None, POLICY, TZ))
    assert steps[1].judgement.runs == {}
    assert (steps[2].judgement.judged, steps[2].judgement.warnings) == ([], ["no_ppm"])


def test_replay_is_lazy() -> None:
    steps = replay([m(T0, 1, "no_ppm"), m(T0 + timedelta(days=1), 2, "no_ppm")], None, POLICY, TZ)
    assert next(steps).item.id == 1


# properties -------------------------------------------------------------------------------

POLLUTANTS = ["co_pct", "hc_ppm", "no_ppm"]
histories = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90 * 24 * 3600),  # seconds since the previous event
        st.sets(st.sampled_from(POLLUTANTS)),
        st.sets(st.sampled_from(POLLUTANTS)),
    ),
    max_size=30,
)


@given(histories, st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=12),
       st.integers(min_value=0, max_value=120))
def test_judge_invariants(seq: list, run_length: int, window: int, gap: int) -> None:
    policy = Policy(judgement_run_length=run_length, judgement_window_months=window, judgement_min_gap_minutes=gap)
    runs: dict = {}
    at = T0
    for eid, (delta, measured, exceeded_raw) in enumerate(seq, start=1):
        at = at + timedelta(seconds=delta)
        exceeded = exceeded_raw & measured
        j = judge(runs, at, eid, measured, exceeded, policy, TZ)
        assert not set(j.judged) & set(j.warnings)
        assert set(j.judged) | set(j.warnings) <= exceeded
        assert j.judged == sorted(j.judged) and j.warnings == sorted(j.warnings)
        for p in measured - exceeded:
            assert p not in j.runs  # a pass always removes the run
        for p in j.judged:
            assert len(j.grounds[p]) == run_length and j.grounds[p][-1] == eid
            assert j.runs[p]["members"] == []
        for run in j.runs.values():
            assert len(run["members"]) < run_length
            for member_at, _ in run["members"]:
                assert within_window(datetime.fromisoformat(member_at), at, window, TZ)
        assert json.loads(json.dumps(j.runs)) == j.runs
        runs = j.runs
