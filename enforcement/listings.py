"""Strikes, blacklists and key supervision, evaluated in the violation's own transaction.

Every listing is a function of the stored facts (strikes, violations, registry), so the
incremental path (`on_violations`, `refresh_registry_listings`) and `recompute` share one
evaluation per subject, `_evaluate_vehicle` and `_evaluate_fleet`, and reach the same
state whatever order violations arrive in. An evaluation never removes an entry: it creates
missing ones and updates the evidence of active ones; an entry stays until a person delists it.
After a delisting only strikes (fleet: violations) detected after it count toward a new entry
for the same subject, rule and period (DOMAIN.md section 7, "Listings after a delisting").
Strikes belong to the inspection cycle containing their day (`enforcement.cycles`); a fleet
counts the violations detected while the vehicles belonged to it (`Violation.fleet_id`).
`still_met` is the one answer to "does this entry's evidence still meet its rule", for the
withdrawal and correction path and for `recompute`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, tuple_, union
from sqlalchemy.orm import Session

from core import audit, registry
from core.db import insert_ignore, insert_ignore_returning, is_postgres, utcnow
from core.plates import mask_plate
from core.registry import Fleet, Vehicle
from core.settings import Policy
from enforcement import cases, cycles
from enforcement.models import ACTIVE, Case, Listing, Strike, Violation

BLACKLIST = "blacklist"
KEY_SUPERVISION = "key_supervision"
THREE_STRIKES = "three_strikes"
FLEET_TEN_PERCENT = "fleet_ten_percent"
NO_REMOTE_OBD = "no_remote_obd"
OVERDUE_CASE = "overdue_case"
KEY_SUPERVISION_REASONS = (OVERDUE_CASE, NO_REMOTE_OBD, THREE_STRIKES)
SYSTEM = "system:listings"
# The delist reason of entries a recompute found unsupported: not a person's delisting.
UNSUPPORTED = "not supported by the violation history under the current registry and policy"


# --- pure rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A listing period (both ends inclusive; no end: an open cycle) and the violation ids that ground it."""

    start: date
    end: date | None
    evidence: tuple[int, ...]


@dataclass(frozen=True, order=True)
class StrikeFact:
    """A strike as the rules see it: its day, the violation holding it, the latest detection
    of that day and the vehicle's use nature recorded at detection."""

    day: date
    violation_id: int
    detected_at: datetime
    use_nature: str | None


def after_delisting(strikes: Sequence[StrikeFact], delisted_at: datetime | None) -> list[StrikeFact]:
    """After a person delisted an entry, only strikes detected after that count toward a new one."""
    return [s for s in strikes if delisted_at is None or s.detected_at > delisted_at]


def list_kind_for(strikes: Sequence[StrikeFact], use_nature: str | None, registered: bool, plate_color: str) -> str:
    """Blacklist for an operating vehicle, key supervision for any other.

    The use nature is the one recorded at the latest of the strikes that knows it, else the
    vehicle's current one (a provisional vehicle registered since); an outside vehicle on a
    yellow plate is presumed operating.
    """
    known = [s.use_nature for s in sorted(strikes) if s.use_nature]
    use = known[-1] if known else use_nature
    if use is None and not registered and plate_color == "yellow":
        use = "operating"
    return BLACKLIST if use == "operating" else KEY_SUPERVISION


def cycle_periods(strikes: Sequence[StrikeFact], cycle_pairs: Sequence[tuple[date, date]], threshold: int,
                  delisted: dict[date, datetime]) -> list[tuple[Period, list[StrikeFact]]]:
    """Each inspection cycle with `threshold` strikes counted in it (those after the latest
    delisting of its entry, `delisted` by cycle start), with the strikes that ground it."""
    found = []
    grouped = cycles.by_window([s.day for s in strikes], cycle_pairs)
    for window, positions in sorted(grouped.items()):
        counted = after_delisting([strikes[i] for i in positions], delisted.get(window.start))
        if len(counted) >= threshold:
            evidence = tuple(sorted(s.violation_id for s in counted))
            found.append((Period(window.start, window.last_day, evidence), counted))
    return found


def rolling_periods(strikes: Sequence[tuple[date, int]], window_days: int, threshold: int) -> list[Period]:
    """Without a cycle on record: `threshold` strikes within the `window_days` up to a strike.

    Scanned in day order; a strike grounds at most one listing, so after a listing only later
    strikes count toward the next one (else every further strike would list again). Adding a
    strike never lowers the number of periods and only moves them earlier, so the stored
    entries can follow the i-th period in place.
    """
    periods: list[Period] = []
    ordered = sorted(strikes)
    last_end: date | None = None
    for i, (day, _) in enumerate(ordered):
        start = day - timedelta(days=window_days - 1)
        if last_end is not None:
            start = max(start, last_end + timedelta(days=1))
        inside = [vid for d, vid in ordered[: i + 1] if d >= start]
        if len(inside) >= threshold:
            periods.append(Period(start, day, tuple(sorted(inside))))
            last_end = day
    return periods


def ratio_reached(violating: int, registered: int, threshold: float) -> bool:
    """E / N >= threshold in exact arithmetic, so exactly 10% qualifies."""
    return registered >= 1 and Fraction(violating, registered) >= Fraction(str(threshold))


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def lacks_remote_obd(fuel_type: str | None, category: str | None, remote_obd: bool | None, policy: Policy) -> bool:
    """Heavy diesel without remote OBD; an unknown (null) remote_obd counts as without."""
    return fuel_type == "diesel" and category in policy.heavy_diesel_categories and remote_obd is not True


# --- strikes ------------------------------------------------------------------------------


def _record_strikes(session: Session, violations: Sequence[Violation]) -> set[int]:
    """One strike per vehicle and local day, held by the day's earliest detected violation;
    answers the vehicles whose strikes changed.

    Keeping the earliest (not the first to arrive) makes the strike independent of upload order.
    """
    earliest: dict[tuple[int, date], Violation] = {}
    for v in violations:
        if v.status != ACTIVE:
            continue
        key = (v.vehicle_id, v.detected_on)
        if key not in earliest or (v.detected_at, v.id) < (earliest[key].detected_at, earliest[key].id):
            earliest[key] = v
    inserted = insert_ignore_returning(
        session, Strike.__table__,
        [{"vehicle_id": vid, "day": day, "violation_id": v.id} for (vid, day), v in earliest.items()],
        ["vehicle_id", "day"], [Strike.vehicle_id],
    )
    changed = {vehicle_id for (vehicle_id,) in inserted}
    strikes = session.scalars(select(Strike).where(
        tuple_(Strike.vehicle_id, Strike.day).in_(sorted(earliest)),
        Strike.violation_id.not_in([v.id for v in earliest.values()]),
    )).all()
    held = select(Violation).where(Violation.id.in_([s.violation_id for s in strikes]), Violation.status == ACTIVE)
    holders = {v.id: v for v in session.scalars(held)}
    for strike in strikes:
        new, holder = earliest[(strike.vehicle_id, strike.day)], holders.get(strike.violation_id)
        if holder is None or (new.detected_at, new.id) < (holder.detected_at, holder.id):
            strike.violation_id = new.id
            changed.add(strike.vehicle_id)
    return changed


# --- writing entries ----------------------------------------------------------------------


def _entry_audit(session: Session, entry: Listing, action: str, actor: str, **extra: Any) -> None:
    audit.append(
        session, actor=actor, action=action, subject_type="listing", subject_id=entry.id,
        data={"list_kind": entry.list_kind, "subject_type": entry.subject_type, "subject_id": entry.subject_id,
              "rule": entry.rule, "period": [entry.period_start.isoformat(), entry.period_end.isoformat()
                                             if entry.period_end else None],
              "evidence": entry.evidence, "ratio": entry.ratio, **extra},
        reason=extra.get("reason"),
    )


def _create(session: Session, *, list_kind: str, subject_type: str, subject_id: int, rule: str, basis: str,
            region: str | None, period: Period, ratio: float | None, actor: str) -> Listing:
    entry = Listing(list_kind=list_kind, subject_type=subject_type, subject_id=subject_id, rule=rule, basis=basis,
                    region=region, period_start=period.start, period_end=period.end, listed_at=utcnow(),
                    evidence=list(period.evidence), ratio=ratio, active=True)
    session.add(entry)
    session.flush()
    _entry_audit(session, entry, "listing.created", actor)
    return entry


def _update_evidence(session: Session, entry: Listing, evidence: Iterable[int], actor: str, *, keep: bool) -> bool:
    """Bring an active entry's evidence up to date with late violations.

    A fleet keeps every id once recorded (`keep`: a vehicle that later leaves the fleet was
    still grounds for the listing); a vehicle's evidence is exactly its strikes, so when a
    late upload brings an earlier violation of a struck day, that one replaces the other.
    """
    wanted = sorted(set(entry.evidence) | set(evidence)) if keep else sorted(set(evidence))
    if not entry.active or wanted == sorted(entry.evidence):
        return False
    added, removed = sorted(set(wanted) - set(entry.evidence)), sorted(set(entry.evidence) - set(wanted))
    entry.evidence = wanted
    _entry_audit(session, entry, "listing.evidence_updated", actor, added=added, removed=removed)
    return True


def _revise(session: Session, entry: Listing, period: Period, actor: str) -> bool:
    """Move an active entry to the period a late strike (or the first cycle on record) produced."""
    current = (entry.period_start, entry.period_end, sorted(entry.evidence))
    if not entry.active or current == (period.start, period.end, list(period.evidence)):
        return False
    entry.period_start, entry.period_end, entry.evidence = period.start, period.end, list(period.evidence)
    session.flush()  # revised in ascending order, so the active-entry index never sees two equal starts
    _entry_audit(session, entry, "listing.revised", actor)
    return True


def flag_for_review(session: Session, entry: Listing, actor: str, withdrawn: Sequence[int]) -> None:
    """Its evidence no longer meets its rule: a person decides (a listing is never silently withdrawn)."""
    entry.review_required = True
    _entry_audit(session, entry, "listing.review_required", actor,
                 reason="violations of its evidence were withdrawn", withdrawn=sorted(withdrawn))


@dataclass
class Outcome:
    """What an evaluation did, for the recompute summary; `kept` are the entries it supports."""

    counts: Counter[str]
    kept: set[int]

    @classmethod
    def empty(cls) -> Outcome:
        return cls(Counter(), set())


# --- evaluation ---------------------------------------------------------------------------


def _lock(session: Session, model: Any, ids: Iterable[int]) -> None:
    """Row locks in id order (deadlock-free); SQLite already serialises writers."""
    ids = sorted(set(ids))
    if ids and is_postgres(session):
        session.execute(select(model.id).where(model.id.in_(ids)).order_by(model.id).with_for_update())


def _strike_facts(session: Session, vehicle_id: int) -> list[StrikeFact]:
    """The vehicle's strikes, each timed by the day's latest active violation: a late upload
    adds violations, so it can only bring a day after a delisting, never take one back."""
    latest = {day: at for day, at in session.execute(
        select(Violation.detected_on, func.max(Violation.detected_at))
        .where(Violation.vehicle_id == vehicle_id, Violation.status == ACTIVE).group_by(Violation.detected_on))}
    rows = session.execute(
        select(Strike.day, Strike.violation_id, Violation.use_nature)
        .join(Violation, Violation.id == Strike.violation_id).where(Strike.vehicle_id == vehicle_id))
    return sorted(StrikeFact(day, vid, latest[day], use) for day, vid, use in rows)


def _delisted_at(entries: Iterable[Listing], start: date) -> datetime | None:
    """When a person last delisted an entry of this period (a recompute's withdrawal is no delisting)."""
    times = [e.delisted_at for e in entries if not e.active and e.period_start == start and e.delisted_at
             and e.delist_reason != UNSUPPORTED]
    return max(times) if times else None


def _follow_kind(session: Session, entry: Listing, kind: str, actor: str) -> bool:
    """The entry's list follows the vehicle's use nature (a provisional vehicle registered since)."""
    if entry.list_kind == kind:
        return False
    before, entry.list_kind = entry.list_kind, kind
    session.flush()
    _entry_audit(session, entry, "listing.moved", actor, moved_from=before)
    return True


def _follow_end(session: Session, entry: Listing, end: date | None, actor: str) -> bool:
    """An open (overdue) cycle's entry ends when a newer cycle is recorded."""
    if entry.period_end == end:
        return False
    entry.period_end = end
    _entry_audit(session, entry, "listing.revised", actor)
    return True


def _evaluate_vehicle(session: Session, vehicle: Vehicle, policy: Policy, out: Outcome, actor: str) -> None:
    """Three strikes in an inspection cycle (or, with none on record, the rolling window)."""
    strikes = _strike_facts(session, vehicle.id)
    pairs = registry.cycle_pairs(session, vehicle.id)
    existing = list(session.scalars(
        select(Listing).where(Listing.subject_type == "vehicle", Listing.subject_id == vehicle.id,
                              Listing.rule == THREE_STRIKES).order_by(Listing.period_start, Listing.id)))
    common = {"subject_type": "vehicle", "subject_id": vehicle.id, "rule": THREE_STRIKES, "region": vehicle.region,
              "ratio": None, "actor": actor}

    def kind(counted: Sequence[StrikeFact]) -> str:
        return list_kind_for(counted, vehicle.use_nature, vehicle.registered, vehicle.plate_color)

    if pairs:
        cycle_entries = [e for e in existing if e.basis == "cycle"]
        delisted = {e.period_start: at for e in cycle_entries if (at := _delisted_at(cycle_entries, e.period_start))}
        for period, counted in cycle_periods(strikes, pairs, policy.strikes_threshold, delisted):
            active = [e for e in cycle_entries if e.active and e.period_start == period.start]
            if not active:  # strikes listed before any cycle was on record: that entry is this cycle's
                active = [e for e in existing if e.active and e.basis == "rolling"
                          and set(e.evidence) & set(period.evidence)][:1]
                for entry in active:
                    entry.basis = "cycle"
                    out.counts["revised"] += _revise(session, entry, period, actor)
                    cycle_entries.append(entry)
            if not active:
                entry = _create(session, list_kind=kind(counted), basis="cycle", period=period, **common)
                out.counts["created"] += 1
                out.kept.add(entry.id)
                continue
            entry, *twice = active  # twice: listed in both lists before the lists followed the use nature
            for other in twice:
                _merge(session, other, entry, actor)
            out.counts["evidence_updated"] += _update_evidence(session, entry, period.evidence, actor, keep=False)
            out.counts["revised"] += _follow_end(session, entry, period.end, actor)
            out.counts["moved"] += _follow_kind(session, entry, kind(counted), actor)
            out.kept.add(entry.id)
        return
    rolling = [e for e in existing if e.basis == "rolling"]
    by_id = {s.violation_id: s for s in strikes}
    for i, period in enumerate(rolling_periods([(s.day, s.violation_id) for s in strikes],
                                               policy.strike_window_days_without_cycle, policy.strikes_threshold)):
        grounds = [by_id[vid] for vid in period.evidence]
        if i < len(rolling):
            out.counts["revised"] += _revise(session, rolling[i], period, actor)
            if rolling[i].active:
                out.counts["moved"] += _follow_kind(session, rolling[i], kind(grounds), actor)
            out.kept.add(rolling[i].id)
        else:
            entry = _create(session, list_kind=kind(grounds), basis="rolling", period=period, **common)
            out.counts["created"] += 1
            out.kept.add(entry.id)


def _merge(session: Session, entry: Listing, into: Listing, actor: str) -> None:
    """A second active entry of one subject, rule and period (both lists, before they followed
    the use nature) gives way to the first: one entry, never two."""
    entry.active, entry.delisted_at, entry.delisted_by = False, utcnow(), actor
    entry.delist_reason = f"merged into entry {into.id} of the same subject, rule and period"
    into.evidence = sorted(set(into.evidence) | set(entry.evidence))
    session.flush()
    _entry_audit(session, entry, "listing.merged", actor, reason=entry.delist_reason, into=into.id)


def fleet_size(session: Session, fleet_id: int) -> int:
    """N: the fleet's registered vehicles at evaluation."""
    return session.scalar(select(func.count()).select_from(Vehicle).where(
        Vehicle.fleet_id == fleet_id, Vehicle.registered.is_(True))) or 0


def fleet_violations(session: Session, fleet_id: int, year: int, after: datetime | None) -> list[tuple[int, int]]:
    """(violation, vehicle) of the active violations detected in `year` while the vehicle
    belonged to the fleet (and after the last delisting): selling a truck does not clean the
    seller's year, buying one imports nothing."""
    first, last = year_bounds(year)
    query = select(Violation.id, Violation.vehicle_id).where(
        Violation.fleet_id == fleet_id, Violation.status == ACTIVE,
        Violation.detected_on >= first, Violation.detected_on <= last)
    if after is not None:
        query = query.where(Violation.detected_at > after)
    return [tuple(row) for row in session.execute(query)]


def _fleet_entries(session: Session, fleet_id: int, start: date) -> list[Listing]:
    return list(session.scalars(
        select(Listing).where(Listing.subject_type == "fleet", Listing.subject_id == fleet_id,
                              Listing.rule == FLEET_TEN_PERCENT, Listing.period_start == start)
        .order_by(Listing.id)))


def _evaluate_fleet(session: Session, fleet: Fleet, year: int, policy: Policy, out: Outcome, actor: str) -> None:
    """Ten percent: distinct vehicles with a violation while in the fleet that year, against the fleet now."""
    first, last = year_bounds(year)
    entries = _fleet_entries(session, fleet.id, first)
    rows = fleet_violations(session, fleet.id, year, _delisted_at(entries, first))
    period = Period(first, last, tuple(sorted(vid for vid, _ in rows)))
    active = [e for e in entries if e.active]
    for entry in active:
        out.counts["evidence_updated"] += _update_evidence(session, entry, period.evidence, actor, keep=True)
        out.kept.add(entry.id)
    violating, registered = len({vehicle_id for _, vehicle_id in rows}), fleet_size(session, fleet.id)
    if not active and ratio_reached(violating, registered, policy.fleet_ratio_threshold):
        entry = _create(session, list_kind=BLACKLIST, subject_type="fleet", subject_id=fleet.id,
                        rule=FLEET_TEN_PERCENT, basis="year", region=fleet.region, period=period,
                        ratio=violating / registered, actor=actor)
        out.counts["created"] += 1
        out.kept.add(entry.id)


def still_met(session: Session, entry: Listing, policy: Policy) -> bool:
    """Whether the entry's own period still holds enough active evidence for its rule, counted
    as the evaluation counts it (strikes or fleet violations after the period's last delisting)."""
    if entry.rule == THREE_STRIKES:
        same = session.scalars(select(Listing).where(
            Listing.subject_type == "vehicle", Listing.subject_id == entry.subject_id, Listing.rule == THREE_STRIKES,
            Listing.basis == entry.basis, Listing.period_start == entry.period_start, Listing.id != entry.id))
        end = entry.period_end or date.max
        inside = [s for s in _strike_facts(session, entry.subject_id) if entry.period_start <= s.day <= end]
        return len(after_delisting(inside, _delisted_at(same, entry.period_start))) >= policy.strikes_threshold
    others = [e for e in _fleet_entries(session, entry.subject_id, entry.period_start) if e.id != entry.id]
    rows = fleet_violations(session, entry.subject_id, entry.period_start.year,
                            _delisted_at(others, entry.period_start))
    return ratio_reached(len({vehicle_id for _, vehicle_id in rows}), fleet_size(session, entry.subject_id),
                         policy.fleet_ratio_threshold)


def on_violations(session: Session, made: Sequence[tuple[Violation, Vehicle]], policy: Policy) -> None:
    """Count the strikes and list the vehicles or their fleets where a rule is met.

    Each vehicle whose strikes changed and each fleet-year concerned is evaluated once, after
    all the strikes: evaluations are functions of the stored facts (a vehicle's: its strikes
    and its registry data, whose changes `refresh_registry_listings` follows), so once is
    the same as once per violation.
    The caller holds the vehicle locks; the fleet rows are locked here before counting, so
    two workers never list a fleet twice nor both miss the crossing.
    """
    if not made:
        return
    struck = _record_strikes(session, [violation for violation, _ in made])
    out = Outcome.empty()
    vehicles = {vehicle.id: vehicle for _, vehicle in made}
    for vehicle_id in sorted(struck):  # a vehicle whose strikes did not change keeps its entries
        _evaluate_vehicle(session, vehicles[vehicle_id], policy, out, SYSTEM)
    fleet_years = sorted({(violation.fleet_id, violation.detected_on.year)
                          for violation, _ in made if violation.fleet_id is not None})
    _lock(session, Fleet, [fleet_id for fleet_id, _ in fleet_years])
    for fleet_id, year in fleet_years:
        fleet = session.get(Fleet, fleet_id)
        if fleet is not None:
            _evaluate_fleet(session, fleet, year, policy, out, SYSTEM)


def evaluate_vehicles(session: Session, vehicles: Sequence[Vehicle], policy: Policy) -> set[int]:
    """Re-evaluate the three-strikes rule of these vehicles (their strikes changed); the ids
    of the entries the current strikes support."""
    out = Outcome.empty()
    for vehicle in sorted(vehicles, key=lambda v: v.id):
        _evaluate_vehicle(session, vehicle, policy, out, SYSTEM)
    return out.kept


def _fleet_years(session: Session, fleet_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Every (fleet, year) with a violation detected while a vehicle belonged to the fleet."""
    rows = session.execute(
        select(Violation.fleet_id, Violation.detected_on).distinct()
        .where(Violation.fleet_id.in_(list(fleet_ids)), Violation.status == ACTIVE)).all()
    return sorted({(fid, day.year) for fid, day in rows})


def refresh_registry_listings(
    session: Session, vehicles: Sequence[Vehicle], previous_fleet_ids: Iterable[int], policy: Policy
) -> None:
    """Re-evaluate after a registry upsert: new cycles, a new use nature, fleets gained or lost.

    `previous_fleet_ids` are the fleets the vehicles belonged to before the upsert: a fleet
    that loses a clean vehicle has a higher ratio.
    """
    ids = [v.id for v in vehicles]
    struck: set[int] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        struck |= set(session.scalars(select(Strike.vehicle_id).distinct().where(Strike.vehicle_id.in_(chunk))))
    _lock(session, Vehicle, struck)
    out = Outcome.empty()
    for vehicle in vehicles:
        if vehicle.id in struck:
            _evaluate_vehicle(session, vehicle, policy, out, SYSTEM)
    fleet_ids = {v.fleet_id for v in vehicles if v.fleet_id is not None} | set(previous_fleet_ids)
    _lock(session, Fleet, fleet_ids)
    for fleet_id, year in _fleet_years(session, fleet_ids):
        _evaluate_fleet(session, session.get(Fleet, fleet_id), year, policy, out, SYSTEM)


def previous_fleet_ids(session: Session, keys: Sequence[tuple[str, str]]) -> set[int]:
    """Fleets of the vehicles with these (plate, plate_color) keys, read before an upsert."""
    found: set[int] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        cond = or_(*[(Vehicle.plate == p) & (Vehicle.plate_color == c) for p, c in chunk])
        found |= {fid for fid in session.scalars(select(Vehicle.fleet_id).where(cond)) if fid is not None}
    return found


def recompute(session: Session, policy: Policy, actor: str = "cli:recompute") -> dict[str, int]:
    """Rebuild strikes and listings from the violation history under the current registry.

    Strikes are rebuilt from scratch; every vehicle with strikes and every (fleet, year) with
    violations is evaluated as the incremental path does. An active entry that neither the
    evaluation nor its own period (`still_met`: a past cycle's listing stays) supports is
    deactivated (kept, for the audit trail), never deleted; delisted entries are left as the
    people who delisted them decided.
    """
    session.execute(delete(Strike))
    rows = session.execute(
        select(Violation.vehicle_id, Violation.detected_on, Violation.id).where(Violation.status == ACTIVE)
        .order_by(Violation.vehicle_id, Violation.detected_on, Violation.detected_at, Violation.id)).all()
    first_of_day: dict[tuple[int, date], int] = {}
    for vehicle_id, day, violation_id in rows:
        first_of_day.setdefault((vehicle_id, day), violation_id)
    strikes = [{"vehicle_id": v, "day": d, "violation_id": vid} for (v, d), vid in first_of_day.items()]
    for i in range(0, len(strikes), 1000):
        insert_ignore(session, Strike.__table__, strikes[i:i + 1000], ["vehicle_id", "day"])
    out = Outcome.empty()
    vehicle_ids = sorted({v for v, _ in first_of_day})
    _lock(session, Vehicle, vehicle_ids)
    for vehicle in session.scalars(select(Vehicle).where(Vehicle.id.in_(vehicle_ids)).order_by(Vehicle.id)):
        _evaluate_vehicle(session, vehicle, policy, out, actor)
    fleet_ids = set(session.scalars(select(Fleet.id)))
    _lock(session, Fleet, fleet_ids)
    fleet_years = _fleet_years(session, fleet_ids)
    for fleet_id, year in fleet_years:
        _evaluate_fleet(session, session.get(Fleet, fleet_id), year, policy, out, actor)
    unkept = session.scalars(select(Listing).where(Listing.active.is_(True), Listing.id.not_in(out.kept or {0})))
    for entry in [e for e in unkept if not still_met(session, e, policy)]:
        entry.active, entry.delisted_at, entry.delisted_by, entry.delist_reason = False, utcnow(), actor, UNSUPPORTED
        _entry_audit(session, entry, "listing.withdrawn", actor, reason=entry.delist_reason)
        out.counts["withdrawn"] += 1
    session.flush()
    active = session.scalar(select(func.count()).select_from(Listing).where(Listing.active.is_(True)))
    return {"strikes": len(strikes), "vehicles_evaluated": len(vehicle_ids), "fleet_years_evaluated": len(fleet_years),
            "created": out.counts["created"], "revised": out.counts["revised"], "moved": out.counts["moved"],
            "evidence_updated": out.counts["evidence_updated"], "withdrawn": out.counts["withdrawn"],
            "active": active or 0}


# --- delisting ----------------------------------------------------------------------------


class AlreadyDelisted(Exception):
    pass


def delist(session: Session, entry: Listing, *, reason: str, actor: str) -> Listing:
    if not entry.active:
        raise AlreadyDelisted
    entry.active, entry.delisted_at, entry.delisted_by, entry.delist_reason = False, utcnow(), actor, reason
    session.flush()
    _entry_audit(session, entry, "listing.delisted", actor, reason=reason)
    return entry


# --- reading ------------------------------------------------------------------------------


def entry_views(session: Session, entries: Sequence[Listing], *,
                public_tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """Entries as the API shows them; for the public disclosure (`public_tz`: the local time
    its dates are in) plates are masked and evidence dropped."""
    vehicle_ids = {e.subject_id for e in entries if e.subject_type == "vehicle"}
    fleet_ids = {e.subject_id for e in entries if e.subject_type == "fleet"}
    vehicles = {v.id: v for v in session.scalars(select(Vehicle).where(Vehicle.id.in_(vehicle_ids)))} \
        if vehicle_ids else {}
    fleets = {f.id: f for f in session.scalars(select(Fleet).where(Fleet.id.in_(fleet_ids)))} if fleet_ids else {}
    views = []
    for e in entries:
        if e.subject_type == "vehicle":
            v = vehicles[e.subject_id]
            subject = {"type": "vehicle", "plate": mask_plate(v.plate) if public_tz else v.plate,
                       "plate_color": v.plate_color}
        else:
            f = fleets[e.subject_id]
            subject = {"type": "fleet", "code": f.code, "name": f.name}
        view: dict[str, Any] = {"id": e.id, "list_kind": e.list_kind, "subject": subject, "rule": e.rule}
        if public_tz is not None:
            view["listed_on"] = e.listed_at.astimezone(public_tz).date()
        else:
            view.update({"listed_at": e.listed_at, "period": {"start": e.period_start, "end": e.period_end},
                         "evidence": sorted(e.evidence), "ratio": e.ratio, "active": e.active,
                         "delisted_at": e.delisted_at, "delist_reason": e.delist_reason})
        views.append(view)
    return views


def vehicle_entries(session: Session, vehicle: Vehicle) -> list[Listing]:
    return list(session.scalars(
        select(Listing).where(Listing.subject_type == "vehicle", Listing.subject_id == vehicle.id)
        .order_by(Listing.listed_at.desc(), Listing.id.desc())))


def is_blacklisted(session: Session, vehicle: Vehicle) -> bool:
    return session.scalar(select(func.count()).select_from(Listing).where(
        Listing.subject_type == "vehicle", Listing.subject_id == vehicle.id, Listing.list_kind == BLACKLIST,
        Listing.active.is_(True))) > 0


def _overdue_since(deadline_on: date) -> date:
    """The first local day a case is overdue: the day after its deadline."""
    return deadline_on + timedelta(days=1)


def _no_obd(policy: Policy) -> Any:
    return (Vehicle.registered.is_(True), Vehicle.fuel_type == "diesel",
            Vehicle.category.in_(policy.heavy_diesel_categories), or_(Vehicle.remote_obd.is_(None),
                                                                       Vehicle.remote_obd.is_(False)))


def _stored_key_supervision() -> Any:
    return (Listing.list_kind == KEY_SUPERVISION, Listing.subject_type == "vehicle", Listing.active.is_(True))


def key_supervision_ids(policy: Policy, today: date, reason: str | None) -> Any:
    """SQL for the ids of vehicles on key supervision (for one reason, or any).

    `overdue_case` and `no_remote_obd` are derived on read, so they follow the cases and
    the registry without any stored state; `three_strikes` is a stored entry.
    """
    parts = {
        OVERDUE_CASE: select(Case.vehicle_id.label("vid")).where(cases.overdue_clause(today)),
        NO_REMOTE_OBD: select(Vehicle.id.label("vid")).where(*_no_obd(policy)),
        THREE_STRIKES: select(Listing.subject_id.label("vid")).where(*_stored_key_supervision()),
    }
    chosen = [parts[reason]] if reason else list(parts.values())
    return union(*chosen) if len(chosen) > 1 else chosen[0]


def key_supervision_of(
    session: Session, vehicles: Sequence[Vehicle], policy: Policy, today: date
) -> dict[int, dict[str, date | datetime]]:
    """Each vehicle's key-supervision reasons (in KEY_SUPERVISION_REASONS order) and since when.

    `overdue_case` starts on a local day (a date); the other reasons at a stored instant.
    """
    ids = [v.id for v in vehicles]
    found: dict[int, dict[str, date | datetime]] = {vid: {} for vid in ids}
    for vid, deadline in session.execute(
            select(Case.vehicle_id, Case.deadline_on).where(Case.vehicle_id.in_(ids), cases.overdue_clause(today))):
        found[vid][OVERDUE_CASE] = _overdue_since(deadline)
    for v in vehicles:
        if v.registered and lacks_remote_obd(v.fuel_type, v.category, v.remote_obd, policy):
            found[v.id][NO_REMOTE_OBD] = v.created_at
    for vid, listed_at in session.execute(
            select(Listing.subject_id, func.min(Listing.listed_at)).where(
                Listing.subject_id.in_(ids), *_stored_key_supervision()).group_by(Listing.subject_id)):
        found[vid][THREE_STRIKES] = listed_at
    return {vid: {r: reasons[r] for r in KEY_SUPERVISION_REASONS if r in reasons}
            for vid, reasons in found.items() if reasons}


def key_supervision_reasons(session: Session, vehicle: Vehicle, policy: Policy, today: date) -> list[str]:
    return list(key_supervision_of(session, [vehicle], policy, today).get(vehicle.id, {}))
