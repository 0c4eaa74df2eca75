"""Any arrival order, in any batch split, judged incrementally with convergence, equals the
fold of the rule over the history in measurement order (DB-free: the judge's replay logic
against an in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.settings import Policy
from enforcement.listings import rolling_periods
from remote_sensing.judgement import Item, Measurement, Reset, Stored, order_key, rejudge, replay

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 2, 28, 23, 30, tzinfo=TZ)
NO = frozenset({"no_ppm"})
BOTH = frozenset({"no_ppm", "co_pct"})
KINDS = {
    "exceed": (NO, NO),
    "exceed_both": (BOTH, BOTH),
    "pass": (NO, frozenset()),
    "co_only": (frozenset({"co_pct"}), frozenset({"co_pct"})),
    "mixed": (BOTH, frozenset({"co_pct"})),
}


class Store:
    """What the judge keeps per item: the run-state projection and the current decision."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.items: dict[tuple, Stored] = {}
        self.visited = 0

    def judge(self, batch: list[Item]) -> None:
        """Like the judge's transaction: it reads the store as it stood before the batch and
        writes every outcome at the end."""
        outcomes = list(rejudge(batch, self.seek, self.policy, TZ))
        for o in outcomes:
            old = o.stored
            decision = (o.judgement.judged, o.judgement.warnings)
            changed = old is not None and decision != (old.judged, old.warnings)
            self.items[order_key(o.item)] = Stored(o.item, o.judgement.runs, *decision,
                                                   (old.revisions + changed) if old else 0)
            self.visited += old is not None

    def seek(self, key: tuple) -> tuple[dict | None, Iterator[Stored]]:
        ordered = sorted(self.items)
        before = [k for k in ordered if k < key]
        return (self.items[before[-1]].runs if before else None), (self.items[k] for k in ordered if k > key)

    def decisions(self) -> dict[tuple, tuple[list[str], list[str]]]:
        return {k: (s.judged, s.warnings) for k, s in self.items.items()}


def reference(items: list[Item], policy: Policy) -> tuple[dict, dict]:
    steps = list(replay(sorted(items, key=order_key), None, policy, TZ))
    return ({order_key(s.item): (s.judgement.judged, s.judgement.warnings) for s in steps},
            {order_key(s.item): s.judgement.runs for s in steps})


def strikes(decisions: dict, items: list[Item]) -> list[tuple[date, int]]:
    """One strike per local day, held by the day's earliest judged measurement."""
    by_key = {order_key(i): i for i in items}
    days: dict[date, int] = {}
    for key in sorted(k for k, (judged, _) in decisions.items() if judged):
        days.setdefault(by_key[key].at.astimezone(TZ).date(), by_key[key].id)
    return sorted((d, i) for d, i in days.items())


# Steps between measurements: near the minimum gap, a day, and the six-month window's edges.
gaps = st.sampled_from([timedelta(minutes=m) for m in (1, 59, 60, 61)]
                       + [timedelta(days=d) for d in (1, 2, 30, 150, 181, 182, 183, 184)])


@st.composite
def histories(draw: Any) -> tuple[list[Item], list[list[Item]], Policy]:
    count = draw(st.integers(1, 14))
    at, items, eid, rid = T0, [], 0, 0
    for _ in range(count):
        at = at + draw(gaps)
        kind = draw(st.sampled_from([*KINDS, "reset"]))
        if kind == "reset":
            rid += 1
            items.append(Reset(at, rid))
        else:
            eid += 1
            items.append(Measurement(at, eid, *KINDS[kind]))
    arrival = draw(st.permutations(items))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(items) - 1)), max_size=len(items))))
    batches = [list(arrival[a:b]) for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True) if arrival[a:b]]
    policy = Policy(judgement_run_length=draw(st.sampled_from([2, 3])),
                    judgement_min_gap_minutes=draw(st.sampled_from([0, 60])))
    return items, batches, policy


@settings(max_examples=300, deadline=None)
@given(histories())
@example((
    [Measurement(T0, 1, NO, NO), Measurement(T0 + timedelta(days=2), 2, NO, NO),
     Measurement(T0 + timedelta(days=1), 3, NO, frozenset())],
    [[Measurement(T0, 1, NO, NO), Measurement(T0 + timedelta(days=2), 2, NO, NO)],
     [Measurement(T0 + timedelta(days=1), 3, NO, frozenset())]],
    Policy(),
))
def test_any_arrival_order_equals_judging_in_order(history: tuple) -> None:
    items, batches, policy = history
    store = Store(policy)
    for batch in batches:
        store.judge(batch)
    decisions, runs = reference(items, policy)
    assert store.decisions() == decisions  # hence the same violations (one per judged event)...
    assert {k: s.runs for k, s in store.items.items()} == runs  # ...and a projection a recompute rebuilds
    got = strikes(store.decisions(), items)
    assert got == strikes(decisions, items)
    assert rolling_periods(got, policy.strike_window_days_without_cycle, policy.strikes_threshold) == \
        rolling_periods(strikes(decisions, items), policy.strike_window_days_without_cycle, policy.strikes_threshold)


def test_a_late_event_stops_at_convergence() -> None:
    # 1,000 stored measurements a day apart, alternating pass and exceedance: a late pass
    # early in the history changes nothing after the next stored pass.
    policy = Policy()
    items: list[Item] = [Measurement(T0 + timedelta(days=i), i + 1, NO, NO if i % 2 else frozenset())
                         for i in range(1000)]
    store = Store(policy)
    store.judge(items)
    store.visited = 0
    store.judge([Measurement(T0 + timedelta(days=10, hours=12), 5000, NO, frozenset())])
    assert store.visited <= 2
    # 100 late passes spread over the history: each stretch converges on its own.
    store.visited = 0
    late = [Measurement(T0 + timedelta(days=10 * k + 3, hours=12), 6000 + k, NO, frozenset()) for k in range(100)]
    store.judge(late)
    assert store.visited <= 2 * len(late)
    decisions, _ = reference([*items, Measurement(T0 + timedelta(days=10, hours=12), 5000, NO, frozenset()), *late],
                             policy)
    assert store.decisions() == decisions


def test_a_mark_of_moved_evidence_ends_no_run() -> None:
    """The run reset a correction queues changes nothing itself; a verified repair ends every run."""
    policy, t0 = Policy(), datetime(2026, 11, 20, 9, tzinfo=TZ)
    high = Measurement(t0, 1, frozenset({"no_ppm"}), frozenset({"no_ppm"}))
    later = Measurement(t0 + timedelta(days=1), 2, frozenset({"no_ppm"}), frozenset({"no_ppm"}))
    mark, repair = Reset(t0 + timedelta(hours=2), 1, ends_runs=False), Reset(t0 + timedelta(hours=2), 2)
    assert [s.judgement.judged for s in replay([high, mark, later], None, policy, TZ)] == [[], [], ["no_ppm"]]
    assert [s.judgement.judged for s in replay([high, repair, later], None, policy, TZ)] == [[], [], []]
    assert [s.judgement.runs for s in replay([mark], None, policy, TZ)] == [{}]
