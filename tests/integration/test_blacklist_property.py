"""Incremental listing equals a recompute from the history, whatever the arrival order, and
whatever registry changes (renewals, fleet moves, registrations) and delistings come between."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from core import registry
from core.db import insert_ignore
from enforcement import listings
from enforcement.models import Listing, Strike, Violation
from enforcement.violations import record_violation
from remote_sensing.processing import provisional_row
from tests.conftest import _clean
from tests.factories import CST
from tests.integration.test_blacklist import plate, uscc

START = date(2025, 11, 1)

vehicles_st = st.lists(
    st.fixed_dictionaries({
        "cycle": st.booleans(),
        "use": st.sampled_from(["operating", "non_operating", None]),
        "fleet": st.sampled_from([None, 0, 1]),
    }),
    min_size=1, max_size=8,
)


# Mostly a few busy days (several violations a day, three strikes close together), some anywhere.
days_st = st.one_of(st.sampled_from([59, 60, 61, 100, 101, 424, 425]), st.integers(0, 500))


@st.composite
def histories(draw: Any) -> tuple[list[dict], list[tuple[int, int, int]], int, int]:
    """Vehicles, violations (vehicle, day, minute) in a shuffled arrival order, and after how
    many arrivals a person delists which of the active entries (a bit mask over them)."""
    vehicles = draw(vehicles_st)
    events = draw(st.lists(
        st.tuples(st.integers(0, len(vehicles) - 1), days_st, st.integers(0, 23 * 60)),
        min_size=1, max_size=25, unique_by=lambda e: (e[0], e[1], e[2])))
    arrivals = draw(st.permutations(events))
    return vehicles, arrivals, draw(st.integers(0, len(arrivals))), draw(st.integers(0, 2**8 - 1))


def state(session: Any) -> tuple[set, set]:
    strikes = {tuple(r) for r in session.execute(select(Strike.vehicle_id, Strike.day, Strike.violation_id))}
    active = {(e.list_kind, e.subject_type, e.subject_id, e.rule, e.period_start, e.period_end, frozenset(e.evidence))
              for e in session.scalars(select(Listing).where(Listing.active.is_(True)))}
    return strikes, active


def delist_some(rt: Any, mask: int) -> None:
    """A person delists some entries, on the simulated clock: just after the latest detection
    recorded so far (a violation detected after a delisting arrives after it)."""
    with rt.sessions() as s:
        at = s.scalar(select(func.max(Violation.detected_at)))
        active = s.scalars(select(Listing).where(Listing.active.is_(True)).order_by(Listing.id)).all()
        for i, entry in enumerate(active):
            if mask >> i & 1:
                listings.delist(s, entry, reason="test", actor="user:test")
                entry.delisted_at = at + timedelta(minutes=1)
        s.commit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(histories())
# A late upload of earlier strikes moves a rolling period (no cycle on record) in place.
@example(([{"cycle": False, "use": "operating", "fleet": None}],
          [(0, 100, 0), (0, 101, 0), (0, 424, 0), (0, 59, 0), (0, 60, 0), (0, 61, 0)], 6, 0))
def test_incremental_equals_recompute(app, history):
    vehicles, arrivals, delist_after, delist_mask = history
    _clean(app)
    rt = app.extensions["lantian"]
    policy = rt.settings.policy
    with rt.sessions() as s:
        registry.upsert_fleets(s, [{"code": uscc(n), "name": f"f{n}", "region": "320200"} for n in (0, 1)],
                               actor="test")
        rows = [{"plate": plate(i), "plate_color": "yellow", "fuel_type": "diesel", "use_nature": v["use"],
                 "region": "320200", "fleet_code": uscc(v["fleet"]) if v["fleet"] is not None else None,
                 "inspection_cycle": {"last_on": START + timedelta(days=60), "next_due_on": START + timedelta(days=425)}
                 if v["cycle"] else None}
                for i, v in enumerate(vehicles)]
        # Clean fleet members, so that fleets have sizes from 1 to 12.
        rows += [{"plate": plate(900 + i), "plate_color": "yellow", "fuel_type": "diesel", "region": "320200",
                  "fleet_code": uscc(i % 2)} for i in range(4)]
        _, made = registry.upsert_vehicles(s, rows, today=START, actor="test")
        ids = [v.id for v in made]
        s.commit()
    for n, (index, day, minute) in enumerate(arrivals):
        if n == delist_after:
            delist_some(rt, delist_mask)
        with rt.sessions() as s:
            vehicle = s.get(registry.Vehicle, ids[index])
            at = datetime.combine(START + timedelta(days=day), time(minute // 60, minute % 60), CST)
            record_violation(s, vehicle=vehicle, source="road_check", source_ref=f"p{n}", detected_at=at,
                             details={}, policy=policy, tz=rt.tz, actor="test")
            s.commit()
    with rt.sessions() as s:
        incremental = state(s)
        summary = listings.recompute(s, policy)
        s.commit()
        assert state(s) == incremental
        assert summary["withdrawn"] == 0 and summary["created"] == 0
        if not s.scalar(select(Listing.id).where(Listing.delisted_by == "user:test").limit(1)):
            # From nothing at all, replaying the history in detection order gives the same state.
            s.execute(delete(Listing))
            s.commit()
            listings.recompute(s, policy)
            s.commit()
            assert state(s) == incremental


# --- with the registry changing in between ------------------------------------------------

CYCLE = (START + timedelta(days=60), START + timedelta(days=425))

# Violations crowd on a few vehicles and days, so that entries are listed, delisted and relisted.
violation_st = st.tuples(st.just("violation"), st.sampled_from([0, 0, 0, 1, 1, 2, 3, 4, 5]),
                         st.one_of(st.sampled_from([59, 60, 61, 62, 100, 101, 102, 424, 425, 426, 430]),
                                   st.integers(0, 800)),
                         st.integers(0, 23 * 60))
registry_st = st.one_of(
    st.tuples(st.just("renew"), st.integers(0, 2), st.sampled_from([0, 0, 30, 200])),
    st.tuples(st.just("move"), st.integers(0, 2), st.sampled_from([None, 0, 1]), st.integers(0, 500)),
    st.tuples(st.just("register"), st.integers(0, 2), st.sampled_from(["operating", "non_operating", None]),
              st.sampled_from([None, 0, 1])),
    st.tuples(st.just("delist"), st.integers(0, 2**6 - 1)),
)


@st.composite
def changing_histories(draw: Any) -> tuple[list[dict], list[tuple]]:
    """Six vehicles (some provisional, outside ones on yellow or blue plates) and a shuffled
    sequence of violations, cycle renewals, fleet moves (from a day), registrations and delistings."""
    vehicles = draw(st.lists(st.fixed_dictionaries({
        "provisional": st.booleans(), "color": st.sampled_from(["yellow", "blue"]), "cycle": st.booleans(),
        "use": st.sampled_from(["operating", "non_operating", None]), "fleet": st.sampled_from([None, 0, 1]),
    }), min_size=6, max_size=6))
    steps = draw(st.lists(st.one_of(violation_st, violation_st, violation_st, registry_st), min_size=6, max_size=36))
    return vehicles, steps


def _put(session: Any, policy: Any, row: dict) -> None:
    """A registry upsert as the API makes it: history, then the listings that depend on it."""
    before = listings.previous_fleet_ids(session, [(row["plate"], row["plate_color"])])
    _, touched = registry.upsert_vehicles(session, [row], today=START + timedelta(days=500), actor="test")
    listings.refresh_registry_listings(session, touched, before, policy)


def _apply(rt: Any, policy: Any, vehicles: list[dict], step: tuple, n: int) -> None:
    kind = step[0]
    if kind == "delist":
        delist_some(rt, step[1])
        return
    with rt.sessions() as s:
        v = vehicles[step[1]]
        row = s.scalars(select(registry.Vehicle).where(registry.Vehicle.plate == plate(step[1]))).one()
        body = {"plate": row.plate, "plate_color": row.plate_color, "fuel_type": "diesel"}
        if kind == "violation":
            _, _, day, minute = step
            at = datetime.combine(START + timedelta(days=day), time(minute // 60, minute % 60), CST)
            record_violation(s, vehicle=row, source="road_check", source_ref=f"c{n}", detected_at=at,
                             details={}, policy=policy, tz=rt.tz, actor="test")
        elif not row.registered and kind != "register":
            return  # only a registration changes what is known of an outside vehicle
        elif kind == "renew":
            last = row.cycle_next_due_on + timedelta(days=step[2]) if row.cycle_next_due_on else CYCLE[0]
            _put(s, policy, body | {"inspection_cycle": {"last_on": last, "next_due_on": last + timedelta(days=365)}})
        elif kind == "move":
            fleet = uscc(step[2]) if step[2] is not None else None
            _put(s, policy, body | {"fleet_code": fleet, "valid_from": START + timedelta(days=step[3])})
        else:
            _, _, use, fleet = step
            v["use"] = use
            _put(s, policy, body | {"use_nature": use, "region": "320200",
                                    "fleet_code": uscc(fleet) if fleet is not None else None})
        s.commit()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(changing_histories())
# A provisional yellow-plate vehicle listed (presumed operating), then registered non-operating:
# its one entry moves to key supervision.
@example(([{"provisional": True, "color": "yellow", "cycle": False, "use": None, "fleet": None}] * 6,
          [("violation", 0, 59, 0), ("violation", 0, 60, 0), ("violation", 0, 61, 0),
           ("register", 0, "non_operating", None)]))
# Listed, delisted, and three more strikes in the same cycle: listed again.
@example(([{"provisional": False, "color": "yellow", "cycle": True, "use": "operating", "fleet": None}] * 6,
          [("violation", 0, 100, 0), ("violation", 0, 101, 0), ("violation", 0, 102, 0), ("delist", 1),
           ("violation", 0, 103, 0), ("violation", 0, 104, 0), ("violation", 0, 105, 0),
           ("violation", 0, 99, 0)]))
# Overdue: strikes after the due day, then a late renewal closing that open cycle.
@example(([{"provisional": False, "color": "yellow", "cycle": True, "use": "operating", "fleet": 0}] * 6,
          [("violation", 0, 424, 0), ("violation", 0, 425, 0), ("violation", 0, 426, 0), ("violation", 0, 427, 0),
           ("renew", 0, 30), ("move", 0, 1, 300)]))
def test_incremental_equals_recompute_with_registry_changes(app, history):
    vehicles, steps = history
    vehicles = [dict(v) for v in vehicles]
    _clean(app)
    rt = app.extensions["lantian"]
    policy = rt.settings.policy
    with rt.sessions() as s:
        registry.upsert_fleets(s, [{"code": uscc(n), "name": f"f{n}", "region": "320200"} for n in (0, 1)],
                               actor="test")
        for i, v in enumerate(vehicles):
            if v["provisional"]:
                insert_ignore(s, registry.Vehicle.__table__, [provisional_row(plate(i), v["color"], "320500")],
                              ["plate", "plate_color"])
        rows = [{"plate": plate(i), "plate_color": v["color"], "fuel_type": "diesel", "use_nature": v["use"],
                 "region": "320200", "fleet_code": uscc(v["fleet"]) if v["fleet"] is not None else None,
                 "registered_on": START, "inspection_cycle": {"last_on": CYCLE[0], "next_due_on": CYCLE[1]}
                 if v["cycle"] else None}
                for i, v in enumerate(vehicles) if not v["provisional"]]
        rows += [{"plate": plate(900 + i), "plate_color": "yellow", "fuel_type": "diesel", "region": "320200",
                  "registered_on": START, "fleet_code": uscc(i % 2)} for i in range(4)]
        registry.upsert_vehicles(s, rows, today=START, actor="test")
        s.commit()
    for n, step in enumerate(steps):
        _apply(rt, policy, vehicles, step, n)
    with rt.sessions() as s:
        incremental = state(s)
        summary = listings.recompute(s, policy)
        s.commit()
        assert state(s) == incremental
        assert summary["withdrawn"] == 0 and summary["created"] == 0 and summary["moved"] == 0
        # One active entry per subject, rule and period, whatever list it is in.
        keys = [(e.subject_type, e.subject_id, e.rule, e.period_start)
                for e in s.scalars(select(Listing).where(Listing.active.is_(True)))]
        assert len(keys) == len(set(keys))
