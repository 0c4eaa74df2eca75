"""Incremental listing equals a recompute from the history, whatever the arrival order."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from core import registry
from enforcement import listings
from enforcement.models import Listing, Strike
from enforcement.violations import record_violation
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
    with rt.sessions() as s:
        active = s.scalars(select(Listing).where(Listing.active.is_(True)).order_by(Listing.id)).all()
        for i, entry in enumerate(active):
            if mask >> i & 1:
                listings.delist(s, entry, reason="test", actor="user:test")
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
        registry.upsert_fleets(s, [{"code": uscc(n), "name": f"f{n}", "region": "320200"} for n in (0, 1)], actor="test")
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
