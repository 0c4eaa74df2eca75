"""Through the real judge (and, in the PostgreSQL pass, real RQ workers): any arrival order
and batch split of a history gives the violations, strikes and listings of judging it in
measurement order, run resets (passing retests that close a case) included."""

from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.registry import Vehicle
from enforcement.listings import rolling_periods
from enforcement.models import Listing, Strike, Violation
from remote_sensing.judgement import Measurement, Reset, order_key, replay
from remote_sensing.models import Event, RunReset
from tests.conftest import _clean
from tests.factories import CST, event
from tests.integration.test_cases import PLATE, Loop
from tests.integration.test_counts import counts_of, months_kept, months_recounted, recount
from workers import jobs

TZ = ZoneInfo("Asia/Shanghai")
PLATES = ["苏B12345", "苏B54321"]
BASE = datetime.now(CST).replace(microsecond=0) - timedelta(days=700)
LAST = BASE + timedelta(days=690)  # inside the stations' calibration window, never in the future
READINGS = {
    "exceed": ({"no_ppm": 1700}, {}),
    "pass": ({"no_ppm": 500}, {}),
    "invalid": ({"no_ppm": 1700}, {"speed_kmh": 200.0}),  # stored, never enforced
}
# Steps between a vehicle's measurements: near the minimum gap, a day, the window's edges.
gaps = st.sampled_from([timedelta(minutes=m) for m in (30, 60, 61)]
                       + [timedelta(days=d) for d in (1, 2, 40, 182, 184)])


@st.composite
def histories(draw: Any) -> tuple[list[dict], list[list[int]]]:
    """Events (vehicle, station, kind, time) and their arrival in batches (indices)."""
    items = []
    for vehicle in range(draw(st.integers(1, 2))):
        at = BASE
        for _ in range(draw(st.integers(1, 7))):
            at = at + draw(gaps)
            if at > LAST:
                break
            items.append({"vehicle": vehicle, "station": draw(st.integers(0, 1)),
                          "kind": draw(st.sampled_from(list(READINGS))), "at": at})
    arrival = draw(st.permutations(range(len(items))))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(items) - 1)), max_size=4)))
    batches = [list(arrival[a:b]) for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True) if arrival[a:b]]
    return items, batches


def expected(items: list[dict], pks: list[int], policy: Any,
             resets: tuple[Reset, ...] = ()) -> tuple[set[int], dict[int, set[date]]]:
    """Events that ground a violation, and each vehicle's strike days, by the fold in measurement
    order (`resets` are vehicle 0's)."""
    grounding: set[int] = set()
    days: dict[int, set[date]] = {}
    for vehicle in {i["vehicle"] for i in items}:
        timeline = sorted([*(Measurement(i["at"], pks[n], frozenset({"no_ppm"}),
                                         frozenset({"no_ppm"}) if i["kind"] == "exceed" else frozenset())
                             for n, i in enumerate(items) if i["vehicle"] == vehicle and i["kind"] != "invalid"),
                           *(resets if vehicle == 0 else ())], key=order_key)
        for s in replay(timeline, None, policy, TZ):
            if s.judgement.judged:
                grounding.add(s.item.id)
                days.setdefault(vehicle, set()).add(s.item.at.astimezone(TZ).date())
    return grounding, days


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(histories())
# A late pass between a judged run, in a later batch: the violation is withdrawn.
@example(([{"vehicle": 0, "station": 0, "kind": "exceed", "at": BASE},
           {"vehicle": 0, "station": 1, "kind": "exceed", "at": BASE + timedelta(days=2)},
           {"vehicle": 0, "station": 0, "kind": "pass", "at": BASE + timedelta(days=1)}], [[0, 1], [2]]))
def test_arrival_order_does_not_change_the_outcome(app, make_station, drain, history):
    items, batches = history
    _clean(app)
    stations = [make_station("RS001"), make_station("RS002")]
    rt = app.extensions["lantian"]
    pks: list[int] = [0] * len(items)
    for batch in batches:
        by_station: dict[int, list[int]] = {}
        for n in batch:
            by_station.setdefault(items[n]["station"], []).append(n)
        for station_no, ns in sorted(by_station.items()):
            bodies = []
            for n in ns:
                measurements, extra = READINGS[items[n]["kind"]]
                bodies.append(event(f"e{n}", at=items[n]["at"], plate=PLATES[items[n]["vehicle"]],
                                    measurements=measurements, **extra))
            r = stations[station_no].post_json("/api/v1/remote-sensing/events/batch", {"events": bodies})
            assert r.status_code == 200, r.get_json()
            for n, result in zip(ns, r.get_json()["results"], strict=True):
                assert result["status"] == "received", result
                pks[n] = result["id"]
        drain()

    grounding, days = expected(items, pks, rt.settings.policy)
    with rt.sessions() as s:
        assert not s.scalars(select(RunReset.id)).all()
        vehicle_ids = {v.plate: v.id for v in s.scalars(select(Vehicle))}
        active = {int(v.source_ref) for v in s.scalars(select(Violation).where(Violation.status == "active"))}
        assert active == grounding
        strikes = {(vid, day) for vid, day in s.execute(select(Strike.vehicle_id, Strike.day))}
        assert strikes == {(vehicle_ids[PLATES[v]], d) for v, ds in days.items() for d in ds}
        listed = {(e.subject_id, e.period_start, e.period_end) for e in s.scalars(
            select(Listing).where(Listing.active.is_(True), Listing.review_required.is_(False)))}
        policy = rt.settings.policy
        want = set()
        for v, ds in days.items():
            vid = vehicle_ids[PLATES[v]]
            held = sorted(s.execute(select(Strike.day, Strike.violation_id).where(Strike.vehicle_id == vid)).all())
            assert [d for d, _ in held] == sorted(ds)
            want |= {(vid, p.start, p.end) for p in rolling_periods(
                [tuple(h) for h in held], policy.strike_window_days_without_cycle, policy.strikes_threshold)}
        assert listed == want
        assert counts_of(s) == recount(s)  # the statistics count each first verdict once
        assert months_kept(s) == months_recounted(s, rt.tz)


def upload(stations: list[Any], items: list[dict], ns: list[int], pks: list[int]) -> None:
    """Upload the items `ns`, each from its station, one batch per station; note their ids in `pks`."""
    by_station: dict[int, list[int]] = {}
    for n in ns:
        by_station.setdefault(items[n]["station"], []).append(n)
    for station_no, group in sorted(by_station.items()):
        bodies = []
        for n in group:
            measurements, extra = READINGS[items[n]["kind"]]
            bodies.append(event(f"e{n}", at=items[n]["at"], plate=PLATES[items[n]["vehicle"]],
                                measurements=measurements, **extra))
        r = stations[station_no].post_json("/api/v1/remote-sensing/events/batch", {"events": bodies})
        assert r.status_code == 200, r.get_json()
        for n, result in zip(group, r.get_json()["results"], strict=True):
            assert result["status"] == "received", result
            pks[n] = result["id"]


@st.composite
def histories_with_a_repair(draw: Any) -> tuple[list[dict], list[list[int]], int, int]:
    """A history of vehicle 0 (苏B12345), its arrival in batches, the item after which its
    case is opened, repaired and closed by a passing retest (a run reset half an hour after
    that item's measurement), and after how many batches that happens."""
    items, batches = draw(histories())
    index = {n: k for k, n in enumerate(n for n, i in enumerate(items) if i["vehicle"] == 0)}
    items = [i for i in items if i["vehicle"] == 0]
    batches = [kept for kept in ([index[n] for n in b if n in index] for b in batches) if kept]
    return items, batches, draw(st.integers(0, len(items) - 1)), draw(st.integers(0, len(batches)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(histories_with_a_repair())
# The repair between two exceedances, recorded after both were judged: the run it ends is no violation.
@example(([{"vehicle": 0, "station": 0, "kind": "exceed", "at": BASE + timedelta(days=1)},
           {"vehicle": 0, "station": 1, "kind": "exceed", "at": BASE + timedelta(days=2)}], [[0, 1]], 0, 1))
def test_arrival_order_does_not_change_the_outcome_with_a_verified_repair(app, make_station, drain, client, login,
                                                                          runner, history):
    """A retest is a person's act, recorded at some point of the uploads; the reset it makes is
    at the retest's time in the timeline. Wherever it falls in the arrival order, the active
    remote-sensing violations are those of the fold over the measurements and the reset."""
    items, batches, after, when = history
    _clean(app)
    stations = [make_station("RS001"), make_station("RS002")]
    loop = Loop(client, login, runner)
    rt = app.extensions["lantian"]
    pks: list[int] = [0] * len(items)
    tested = items[after]["at"] + timedelta(minutes=30)

    def repair() -> None:
        case_id = loop.open_case(tested_at=(tested - timedelta(minutes=20)).isoformat())
        assert loop.penalty(case_id).status_code == 201
        assert loop.repair(completed_at=(tested - timedelta(minutes=10)).isoformat()).status_code == 201
        r = client.post("/api/v1/retests", headers=loop.inspector, json={
            "plate": PLATE, "plate_color": "yellow", "tested_at": tested.isoformat(), "method": "lug_down",
            "results": {"opacity_pct": 8.0}, "passed": True})
        assert r.status_code == 201, r.get_json()
        drain()

    for k, batch in enumerate(batches):
        if k == when:
            repair()
        upload(stations, items, batch, pks)
        drain()
    if when == len(batches):
        repair()
    with rt.sessions() as s:
        resets = tuple(Reset(at, pk) for pk, at in s.execute(
            select(RunReset.id, RunReset.at).where(RunReset.cause == "retest_passed")))
        assert [r.at for r in resets] == [tested]  # the retest closed the case: one verified repair
        grounding, _ = expected(items, pks, rt.settings.policy, resets)
        active = {int(v.source_ref) for v in s.scalars(select(Violation).where(
            Violation.status == "active", Violation.source == "remote_sensing"))}
        assert counts_of(s) == recount(s)  # replays after the repair revise, and count nothing again
        assert months_kept(s) == months_recounted(s, rt.tz)
    assert active == grounding


def judge_at_once(judges: int, *, until_empty: bool = False) -> None:
    """`judges` threads run the judge's drain job at the same time (again and again until it
    finds nothing, with `until_empty`); an exception in any of them fails the test."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while jobs.judge_pending() and until_empty:
                pass
        except BaseException as err:  # reported below: a thread's exception is otherwise lost
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(judges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_two_judges_at_once_give_the_outcome_of_judging_in_order(app, station, drain):
    """Two workers drain a shuffled backlog of one vehicle in small batches at the same time."""
    rt = app.extensions["lantian"]
    if rt.rq_queue is None:
        pytest.skip("inline jobs judge each upload at once: no backlog for two workers to share")
    rng = random.Random(5)
    items = [{"vehicle": 0, "station": 0, "kind": rng.choice(["exceed", "exceed", "pass", "invalid"]),
              "at": BASE + timedelta(hours=3 * k)} for k in range(60)]
    order = list(range(len(items)))
    rng.shuffle(order)
    pks = [0] * len(items)
    for n in order:
        measurements, extra = READINGS[items[n]["kind"]]
        r = station.post_json("/api/v1/remote-sensing/events",
                              event(f"e{n}", at=items[n]["at"], measurements=measurements, **extra))
        assert r.status_code == 202, r.get_json()
        pks[n] = r.get_json()["id"]
    rt.settings.judge_batch_size = 4
    judge_at_once(2)
    grounding, _ = expected(items, pks, rt.settings.policy)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.status == "received")) == 0
        active = {int(v.source_ref) for v in s.scalars(select(Violation).where(Violation.status == "active"))}
        assert counts_of(s) == recount(s)
        assert months_kept(s) == months_recounted(s, rt.tz)
    assert active == grounding
