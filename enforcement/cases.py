"""The I/M case of a vehicle: at most one open at a time, moved only by `transition()`.

Every step of the loop (notice, penalty or waiver, repair, retest) goes through one
allowed-transition table and one service that checks the table, applies the step and
appends it to the audit trail, so the trail alone replays to the case's status.

Each step follows its cause (DOMAIN.md section 7): a notice is issued on or after the local
day of the case's first violation, a repair completes after its first detection, a retest
follows the repair it verifies; otherwise 422 `step_before_cause` naming both dates.

Where API.md is silent:
- a refused step stores nothing, not even the record it carried;
- a passing retest waits, `repaired` with `retest_passed`, for the penalties or waivers of
  the violations not yet covered; the last of them closes the case, and until then any
  other step is a 409 `penalty_required`;
- a repair needs no notice; a failed retest returns the case to `notified`, and the next
  retest needs a new repair (`repair_required`);
- a penalty or waiver covers the violations it names (default: every active one not yet
  covered); naming only violations already covered is a 409 `penalty_already_recorded`,
  naming any that are not active violations of the case, or a mix, a 422;
- a notice identical to the case's latest (same `issued_on` and `deadline_days`) is a
  replay and answers the stored one; another notice while `notified` replaces the deadline
  (a re-notice after a failed retest);
- a violation detected after the case's latest repair sends a `repaired` case back to
  `notified` (the system step `violation_after_repair`); one detected no later than the
  repair of a case that has closed since joins that closed case;
- repairs and retests are found by plate and bound to the caller's org and region.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, exists, func, literal, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, object_session

from core import audit, regions, registry
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.identity import Role
from core.queue import enqueue_after_commit
from core.registry import Fleet, Vehicle
from core.settings import Policy
from enforcement import evidence
from enforcement.models import ACTIVE, Case, Notice, Penalty, Repair, Retest, Violation
from remote_sensing import processing
from remote_sensing.ingest import JUDGE_JOB

OPEN_STATUSES = ("open", "notified", "repaired")


class Step(StrEnum):
    NOTICE = "notice"
    PENALTY = "penalty"
    WAIVER = "waiver"
    REPAIR = "repair"
    RETEST_PASSED = "retest_passed"
    RETEST_FAILED = "retest_failed"
    VIOLATION_AFTER_REPAIR = "violation_after_repair"  # taken by the system, never by a person


# The loop itself: status -> step -> next status. A step missing here is refused. A passing
# retest reaches `closed` only when every active violation is covered (see next_status).
TRANSITIONS: dict[str, dict[Step, str]] = {
    "open": {Step.NOTICE: "notified", Step.PENALTY: "open", Step.WAIVER: "open", Step.REPAIR: "repaired"},
    "notified": {
        Step.NOTICE: "notified", Step.PENALTY: "notified", Step.WAIVER: "notified", Step.REPAIR: "repaired",
    },
    "repaired": {
        Step.PENALTY: "repaired", Step.WAIVER: "repaired", Step.REPAIR: "repaired",
        Step.RETEST_PASSED: "closed", Step.RETEST_FAILED: "notified", Step.VIOLATION_AFTER_REPAIR: "notified",
    },
    "closed": {},
}

# Why a step is refused where the table lacks it: the code names the missing step.
_REFUSALS: dict[tuple[str, Step], str] = {
    ("open", Step.RETEST_PASSED): "repair_required",
    ("open", Step.RETEST_FAILED): "repair_required",
    ("open", Step.VIOLATION_AFTER_REPAIR): "repair_required",
    ("notified", Step.RETEST_PASSED): "repair_required",
    ("notified", Step.RETEST_FAILED): "repair_required",
    ("notified", Step.VIOLATION_AFTER_REPAIR): "repair_required",
    ("repaired", Step.NOTICE): "retest_required",
}

# Who may take each step (admin always may).
STEP_ROLES: dict[Step, tuple[str, ...]] = {
    Step.NOTICE: (Role.ENV_OFFICER,),
    Step.PENALTY: (Role.POLICE,),
    Step.WAIVER: (Role.POLICE,),
    Step.REPAIR: (Role.REPAIR_STATION,),
    Step.RETEST_PASSED: (Role.INSPECTION_STATION,),
    Step.RETEST_FAILED: (Role.INSPECTION_STATION,),
    Step.VIOLATION_AFTER_REPAIR: (),
}

_PENALTY_STEPS = (Step.PENALTY, Step.WAIVER)
# What a case waiting for its penalties after a passing retest still accepts.
_WHILE_RETEST_PASSED = (*_PENALTY_STEPS, Step.VIOLATION_AFTER_REPAIR)


class PersonLike(Protocol):
    actor: str
    role: str
    scope: str | None
    org_id: int | None


@dataclass(frozen=True)
class Actor:
    """Who takes a step, as plain values: services never see the request."""

    name: str
    role: str
    scope: str | None = None
    org_id: int | None = None

    @classmethod
    def of(cls, person: PersonLike) -> Actor:
        return cls(person.actor, person.role, person.scope, person.org_id)

    def may(self, step: Step) -> bool:
        return self.role == Role.ADMIN or self.role in STEP_ROLES[step]


def next_status(status: str, step: Step, *, covered: bool, retest_passed: bool) -> str:
    """The status after `step`, or a Conflict whose code names what is missing.

    `covered`: every active violation of the case is covered by a penalty or waiver once
    the step is taken; `retest_passed`: a passing retest already waits for them.
    """
    if status == "closed":
        raise Conflict("the case is closed", code="case_closed")
    if retest_passed and step not in _WHILE_RETEST_PASSED:
        raise Conflict("the retest passed: the case closes when a penalty or waiver covers every violation",
                       code="penalty_required")
    target = TRANSITIONS[status].get(step)
    if target is None:
        code = _REFUSALS[(status, step)]
        raise Conflict(f"{step} is not possible while the case is {status}: {code.replace('_', ' ')}", code=code)
    if target == "closed" and not covered:
        return status  # the passing retest is kept; the last penalty or waiver closes the case
    if step in _PENALTY_STEPS and retest_passed and covered:
        return "closed"
    return target


def step_before_cause(field_name: str, value: date | datetime, cause: str, cause_value: date | datetime,
                      *, same_allowed: bool = False) -> Unprocessable | None:
    """The refusal of a step dated before its cause (None when it follows it): a notice may be
    issued on its violation's day (`same_allowed`), a repair or retest only after its cause."""
    if value > cause_value or (same_allowed and value == cause_value):
        return None
    relation = "before" if same_allowed else "at or before"
    message = f"{field_name} {value.isoformat()} is {relation} {cause} {cause_value.isoformat()}"
    return Unprocessable(message, code="step_before_cause", fields={field_name: [message]})


# --- reading -----------------------------------------------------------------------------


def in_region(column: InstrumentedAttribute[Any], scope: str | None) -> ColumnElement[bool]:
    """SQL form of `regions.contains(scope, column)`: the scope and its children."""
    if scope is None:
        return true()
    return column.startswith(regions.region_prefix(scope), autoescape=True)


def violation_in_region(scope: str | None) -> ColumnElement[bool]:
    """A violation belongs where it was detected and to the vehicle's registration region
    (DOMAIN.md section 7, "Jurisdiction"): either within `scope` makes it visible."""
    if scope is None:
        return true()
    return or_(in_region(Violation.region, scope), in_region(Violation.vehicle_region, scope))


def case_in_region(scope: str | None) -> ColumnElement[bool]:
    """A case's regions are its vehicle's (`Case.region`) and those of its violations, read
    through the case's violations (ix on `case_id`), so nothing is stored twice.

    A scalar subquery, not EXISTS: PostgreSQL may run an EXISTS under OR as a hashed subplan
    over every violation in scope (a sequential scan per page: 42 ms at 50,000 violations,
    growing with the table), while this one is evaluated per case on the page (0.6 ms)."""
    if scope is None:
        return true()
    one = select(literal(1)).where(Violation.case_id == Case.id, violation_in_region(scope)).limit(1)
    return or_(in_region(Case.region, scope), one.scalar_subquery().is_not(None))


def violation_visible(violation: Violation, scope: str | None) -> bool:
    """Python form of `violation_in_region`."""
    return regions.contains(scope, violation.region) or regions.contains(scope, violation.vehicle_region)


def case_visible(session: Session, case: Case, scope: str | None) -> bool:
    """Python form of `case_in_region` for one case."""
    if regions.contains(scope, case.region):
        return True
    return bool(session.scalar(select(exists().where(Violation.case_id == case.id, violation_in_region(scope)))))


def local_today(tz: ZoneInfo) -> date:
    """The calendar day that deadlines are counted in (settings.timezone)."""
    return datetime.now(tz).date()


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL form of `is_overdue` (false, never NULL, for a case without a deadline)."""
    return and_(Case.status != "closed", Case.deadline_on.is_not(None), Case.deadline_on < today)


def is_overdue(case: Case, today: date) -> bool:
    """Not closed and the local date is after the deadline (the deadline day itself is not late)."""
    return case.status != "closed" and case.deadline_on is not None and today > case.deadline_on


def cases_query(
    *, scope: str | None, today: date, status: str | None = None, overdue: bool | None = None,
    region: str | None = None,
) -> Select[Any]:
    stmt = select(Case).where(case_in_region(scope))
    if region:
        stmt = stmt.where(case_in_region(region))
    if status:
        stmt = stmt.where(Case.status == status)
    if overdue is not None:
        stmt = stmt.where(overdue_clause(today) if overdue else not_(overdue_clause(today)))
    return stmt


def open_case_of(session: Session, vehicle_id: int) -> Case | None:
    return open_cases_of(session, [vehicle_id]).get(vehicle_id)


def served_case(session: Session, plate: str, plate_color: str, scope: str | None) -> Case:
    """The open case of a vehicle an M or I station serves: only within the station's region."""
    vehicle = registry.find_vehicle(session, plate, plate_color)
    case = open_case_of(session, vehicle.id) if vehicle is not None else None
    if case is None or not case_visible(session, case, scope):
        raise NotFound("the vehicle has no open case in your region", code="no_open_case")
    return case


def visible_case(session: Session, case_id: int, scope: str | None) -> Case:
    """The case, or 404 when it does not exist or lies outside the reader's region."""
    case = session.get(Case, case_id)
    if case is None or not case_visible(session, case, scope):
        raise NotFound("no such case", code="case_not_found")
    return case


# --- opening -----------------------------------------------------------------------------


def open_cases_of(session: Session, vehicle_ids: Iterable[int]) -> dict[int, Case]:
    """The open case of each of these vehicles that has one."""
    ids = sorted(set(vehicle_ids))
    if not ids:
        return {}
    query = select(Case).where(Case.vehicle_id.in_(ids), Case.status != "closed")
    return {c.vehicle_id: c for c in session.scalars(query)}


def last_repairs(session: Session, case_ids: Iterable[int]) -> dict[int, datetime]:
    """When each case's latest repair was completed (cases without a repair are absent)."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = session.execute(select(Repair.case_id, func.max(Repair.completed_at)).where(
        Repair.case_id.in_(ids)).group_by(Repair.case_id))
    return {case_id: at for case_id, at in rows}


@dataclass
class CaseIndex:
    """What placing new violations needs, read once for a whole batch of vehicles."""

    open: dict[int, Case]  # vehicle id -> its open case
    repaired_at: dict[int, datetime]  # open case id -> its latest repair
    # vehicle id -> (latest repair, case id) of its cases closed by a retest, repaired after `since`
    answered: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)


def case_index(session: Session, vehicle_ids: Iterable[int], since: datetime) -> CaseIndex:
    """Three statements whatever the batch: open cases, their repairs, and the closed cases
    whose repair came after the batch's earliest detection (the only ones it can join)."""
    ids = sorted(set(vehicle_ids))
    open_cases = open_cases_of(session, ids)
    repaired_at = last_repairs(session, (c.id for c in open_cases.values() if c.repaired))
    answered: dict[int, list[tuple[datetime, int]]] = {}
    if ids:
        latest = func.max(Repair.completed_at)
        rows = session.execute(
            select(Case.vehicle_id, Case.id, latest).join(Repair, Repair.case_id == Case.id)
            .where(Case.vehicle_id.in_(ids), Case.status == "closed", Case.closed_reason == "retest_passed")
            .group_by(Case.vehicle_id, Case.id).having(latest >= since).order_by(latest)
        )
        for vehicle_id, case_id, at in rows:
            answered.setdefault(vehicle_id, []).append((at, case_id))
    return CaseIndex(open_cases, repaired_at, answered)


def open_or_join(
    session: Session, vehicle: Vehicle, violation: Violation, *, actor: str, index: CaseIndex | None = None,
) -> Case:
    """The one place that decides a new violation's case, and sets `violation.case_id`.

    In order: the earliest closed case whose repair came no earlier than the detection (that
    repair and its retest answer it: no new loop), else the open case (sent back to `notified`
    when the violation came after its repair), else a new case. The caller holds the vehicle
    lock, so the check-then-insert cannot race; `index` is read once per batch.
    """
    index = index or case_index(session, [vehicle.id], violation.detected_at)
    for repaired_at, case_id in index.answered.get(vehicle.id, ()):
        if violation.detected_at <= repaired_at:
            violation.case_id = case_id
            audit.append(session, actor=actor, action="case.joined_closed", subject_type="case", subject_id=case_id,
                         reason=f"detected before the repair completed at {repaired_at.isoformat()}",
                         data={"violation_id": violation.id, "repaired_at": repaired_at.isoformat()})
            return session.get_one(Case, case_id)
    case = index.open.get(vehicle.id)
    if case is not None:
        repaired_at = index.repaired_at.get(case.id)
        if case.status == "repaired" and repaired_at is not None and violation.detected_at > repaired_at:
            _move(session, case, Step.VIOLATION_AFTER_REPAIR, violation, actor=actor, covered=False,
                  reason=f"detected after the repair completed at {repaired_at.isoformat()}")
        else:
            violation.case_id = case.id
            case.penalty_settled = False  # a new violation is covered by no penalty yet
        return case
    case = Case(vehicle_id=vehicle.id, status="open", region=vehicle.region, opened_at=violation.detected_at)
    session.add(case)
    session.flush()
    violation.case_id = case.id
    index.open[vehicle.id] = case
    audit.append(
        session, actor=actor, action="case.opened", subject_type="case", subject_id=case.id,
        data={"vehicle_id": vehicle.id, "violation_id": violation.id, "status": "open"},
    )
    return case


# --- the loop ----------------------------------------------------------------------------


def admissible(case: Case, step: Step, actor: Actor) -> None:
    """Refuse a step the caller's role or the table forbids, before anything else is checked."""
    if not actor.may(step):
        raise Forbidden(f"role {actor.role} may not record a {step}")
    next_status(case.status, step, covered=case.penalty_settled, retest_passed=case.retest_passed)


def transition(session: Session, case: Case, step: Step, record: Any, *, actor: Actor, reason: str,
               covered: bool | None = None) -> Case:
    """Take one step: check role and table, store `record`, move the case, audit it.

    `covered` says whether a penalty or waiver covers every active violation once the step
    is taken (default: as stored now, read afresh, since a withdrawal may have left only
    covered violations). Nothing is written when the step is refused.
    """
    admissible(case, step, actor)
    if covered is None:
        covered = set(active_violations(session, case.id)) <= covered_violations(session, case.id)
    return _move(session, case, step, record, actor=actor.name, reason=reason, covered=covered)


def _move(session: Session, case: Case, step: Step, record: Any, *, actor: str, reason: str, covered: bool) -> Case:
    before, waiting = case.status, case.retest_passed
    after = next_status(before, step, covered=covered, retest_passed=waiting)
    record.case_id = case.id
    session.add(record)
    case.status = after
    case.penalty_settled = covered
    if step == Step.NOTICE:
        case.deadline_on = record.deadline_on
    elif step == Step.REPAIR:
        case.repaired = True
    elif step == Step.RETEST_PASSED:
        case.retest_passed = True
    elif step == Step.VIOLATION_AFTER_REPAIR:
        case.retest_passed = False  # the retest verified a repair that did not hold
    if after == "closed":
        close_case(case, reason="retest_passed")
    session.flush()
    audit.append(
        session, actor=actor, action="case.transition", subject_type="case", subject_id=case.id, reason=reason,
        data={"step": str(step), "from": before, "to": after, "record": type(record).__tablename__,
              "record_id": record.id, "covered": covered, "retest_passed": waiting},
    )
    return case


def close_case(case: Case, *, reason: str) -> None:
    """The one place a case closes: `retest_passed` (the loop ran its course) or `withdrawn`
    (no active violation is left on it).

    A passing retest that closes a case is a verified repair: it ends every judgement run
    of the vehicle at the retest's `tested_at` (a run reset the judge replays, since later
    measurements may already be judged).
    """
    case.status = "closed"
    case.closed_reason = reason
    case.closed_at = utcnow()
    if reason == "retest_passed":
        session = object_session(case)
        assert session is not None, "a case closes inside the transaction that holds it"
        tested_at = session.scalar(select(func.max(Retest.tested_at)).where(
            Retest.case_id == case.id, Retest.passed.is_(True)))
        reset = processing.record_reset(session, case.vehicle_id, tested_at or utcnow(), cause=reason,
                                        case_id=case.id)
        enqueue_after_commit(session, JUDGE_JOB, job_id=f"judge-reset-{reset.id}", coalesce="judge")


def _locked_case(session: Session, case_id: int, scope: str | None) -> Case:
    case = visible_case(session, case_id, scope)
    registry.lock_vehicles(session, [case.vehicle_id])
    session.refresh(case)  # re-read under the lock: another transaction may have moved it
    return case


def _locked_open_case(session: Session, plate: str, plate_color: str, scope: str | None) -> Case:
    vehicle = registry.find_vehicle(session, plate, plate_color)
    if vehicle is None:
        raise NotFound("no such vehicle", code="vehicle_not_found")
    registry.lock_vehicles(session, [vehicle.id])
    case = open_case_of(session, vehicle.id)
    if case is None or not case_visible(session, case, scope):
        raise NotFound("the vehicle has no open case", code="no_open_case")
    return case


def _first_detection(session: Session, case_id: int) -> tuple[datetime, date] | None:
    """The earliest active violation of the case: its instant and its local day."""
    row = session.execute(select(Violation.detected_at, Violation.detected_on).where(
        Violation.case_id == case_id, Violation.status == ACTIVE).order_by(Violation.detected_at).limit(1)).first()
    return (row[0], row[1]) if row else None


def _refuse_before(refusal: Unprocessable | None) -> None:
    if refusal is not None:
        raise refusal


def issue_notice(
    session: Session, case_id: int, *, actor: Actor, today: date, policy: Policy,
    deadline_days: int | None = None, issued_on: date | None = None,
) -> tuple[Notice, bool]:
    """The notice and whether it is new: the same notice again answers the stored one."""
    issued_on = issued_on or today
    if issued_on > today:
        raise Unprocessable("the notice cannot be issued in the future",
                            fields={"issued_on": [f"must not be after today ({today.isoformat()})"]})
    days = policy.notice_deadline_days if deadline_days is None else deadline_days
    case = _locked_case(session, case_id, actor.scope)
    if not actor.may(Step.NOTICE):
        raise Forbidden(f"role {actor.role} may not record a {Step.NOTICE}")
    latest = session.scalars(select(Notice).where(Notice.case_id == case.id)
                             .order_by(Notice.created_at.desc(), Notice.id.desc()).limit(1)).first()
    if latest is not None and (latest.issued_on, latest.deadline_days) == (issued_on, days):
        return latest, False
    admissible(case, Step.NOTICE, actor)
    first = _first_detection(session, case.id)
    if first is not None:
        _refuse_before(step_before_cause("issued_on", issued_on, "the local date of the first violation", first[1],
                                         same_allowed=True))
    notice = Notice(issued_on=issued_on, deadline_days=days, deadline_on=issued_on + timedelta(days=days),
                    issued_by=actor.name)
    transition(session, case, Step.NOTICE, notice, actor=actor,
               reason=f"notice issued on {issued_on.isoformat()}, deadline {notice.deadline_on.isoformat()}")
    return notice, True


def covered_violations(session: Session, case_id: int) -> set[int]:
    """The violations of the case that a penalty or waiver covers."""
    covered: set[int] = set()
    legacy = None  # a penalty stored before penalties named violations covered all the case had then
    for ids, created_at in session.execute(select(Penalty.violation_ids, Penalty.created_at).where(
            Penalty.case_id == case_id)):
        if ids is None:
            legacy = created_at if legacy is None else max(legacy, created_at)
        covered.update(ids or ())
    if legacy is not None:
        covered.update(session.scalars(select(Violation.id).where(
            Violation.case_id == case_id, Violation.created_at <= legacy)))
    return covered


def active_violations(session: Session, case_id: int) -> list[int]:
    return list(session.scalars(select(Violation.id).where(
        Violation.case_id == case_id, Violation.status == ACTIVE).order_by(Violation.detected_at, Violation.id)))


def _coverage(session: Session, case: Case, named: Sequence[int] | None) -> tuple[list[int], bool]:
    """The violations a new penalty or waiver covers, and whether every active one is covered after it."""
    active, covered = active_violations(session, case.id), covered_violations(session, case.id)
    if named is None:
        ids = [v for v in active if v not in covered]
    else:
        ids = list(dict.fromkeys(named))
        if ids and all(v in covered for v in ids):
            ids = []
        else:
            wrong = [v for v in ids if v not in active or v in covered]
            if wrong:
                message = (f"violations {', '.join(map(str, wrong))} are not active violations of case {case.id} "
                           "left to cover")
                raise Unprocessable(message, code="validation_error", fields={"violation_ids": [message]})
    if not ids:
        raise Conflict("a penalty or waiver already covers these violations", code="penalty_already_recorded")
    return ids, set(active) <= covered | set(ids)


def record_penalty(
    session: Session, case_id: int, *, actor: Actor, policy: Policy, decision_no: str,
    amount_yuan: int | None = None, legal_basis: str | None = None, issued_at: datetime | None = None,
    violation_ids: Sequence[int] | None = None,
) -> Penalty:
    case = _locked_case(session, case_id, actor.scope)
    admissible(case, Step.PENALTY, actor)
    ids, covered = _coverage(session, case, violation_ids)
    penalty = Penalty(
        waived=False, decision_no=decision_no,
        amount_yuan=policy.penalty_amount_yuan if amount_yuan is None else amount_yuan,
        legal_basis=legal_basis or policy.penalty_legal_basis, code=policy.penalty_code,
        issued_at=issued_at or utcnow(), issued_by=actor.name, violation_ids=ids,
    )
    transition(session, case, Step.PENALTY, penalty, actor=actor, covered=covered,
               reason=f"penalty {decision_no}: {penalty.amount_yuan} yuan")
    return penalty


def record_waiver(session: Session, case_id: int, *, actor: Actor, reason: str,
                  issued_at: datetime | None = None, violation_ids: Sequence[int] | None = None) -> Penalty:
    case = _locked_case(session, case_id, actor.scope)
    admissible(case, Step.WAIVER, actor)
    ids, covered = _coverage(session, case, violation_ids)
    waiver = Penalty(waived=True, reason=reason, issued_at=issued_at or utcnow(), issued_by=actor.name,
                     violation_ids=ids)
    transition(session, case, Step.WAIVER, waiver, actor=actor, covered=covered, reason=reason)
    return waiver


def record_repair(
    session: Session, *, actor: Actor, plate: str, plate_color: str, items: Sequence[str],
    completed_at: datetime | None = None, notes: str | None = None,
) -> Repair:
    case = _locked_open_case(session, plate, plate_color, actor.scope)
    admissible(case, Step.REPAIR, actor)
    completed_at = completed_at or utcnow()
    first = _first_detection(session, case.id)
    if first is not None:
        _refuse_before(step_before_cause("completed_at", completed_at, "the first detection", first[0]))
    repair = Repair(org_id=actor.org_id, completed_at=completed_at, items=list(items), notes=notes,
                    reported_by=actor.name)
    transition(session, case, Step.REPAIR, repair, actor=actor, reason=notes or "repair reported")
    return repair


def record_retest(
    session: Session, *, actor: Actor, plate: str, plate_color: str, passed: bool, method: str,
    results: dict[str, Any] | None = None, tested_at: datetime | None = None,
) -> Retest:
    case = _locked_open_case(session, plate, plate_color, actor.scope)
    step = Step.RETEST_PASSED if passed else Step.RETEST_FAILED
    admissible(case, step, actor)
    tested_at = tested_at or utcnow()
    repaired_at = last_repairs(session, [case.id]).get(case.id)
    if repaired_at is not None:
        _refuse_before(step_before_cause("tested_at", tested_at, "the repair completed at", repaired_at))
    retest = Retest(org_id=actor.org_id, tested_at=tested_at, method=method, results=results or {},
                    passed=passed, reported_by=actor.name)
    transition(session, case, step, retest, actor=actor, reason=f"retest {'passed' if passed else 'failed'}")
    return retest


# --- overdue -----------------------------------------------------------------------------


def record_overdue(session: Session, today: date, *, actor: str = "system:overdue", chunk: int = 500) -> int:
    """Audit each case that has become overdue, once per deadline; returns how many were new."""
    late = session.scalars(select(Case).where(overdue_clause(today)).order_by(Case.id)).all()
    fresh = []
    for start in range(0, len(late), chunk):  # bounded IN lists, whatever the backlog
        part = late[start : start + chunk]
        seen = {
            (rec.subject_id, rec.data.get("deadline_on"))
            for rec in session.scalars(select(audit.AuditRecord).where(
                audit.AuditRecord.action == "case.overdue",
                audit.AuditRecord.subject_id.in_([str(c.id) for c in part]),
            ))
        }
        fresh += [c for c in part if (str(c.id), c.deadline_on.isoformat()) not in seen]
    for case in fresh:
        audit.append(
            session, actor=actor, action="case.overdue", subject_type="case", subject_id=case.id,
            reason=f"not closed by its deadline {case.deadline_on.isoformat()}",
            data={"deadline_on": case.deadline_on.isoformat(), "status": case.status, "vehicle_id": case.vehicle_id},
        )
    return len(fresh)


# --- presenting --------------------------------------------------------------------------
#
# A view holds exactly what schemas.cases dumps: the same keys in the schema's field order,
# with times and dates left to the app's JSON provider, which writes them as AwareDateTime
# and Date do. So GET /cases, the heaviest answer, skips marshmallow's dump (about half of
# that request's time); tests/unit/test_case_views.py keeps the views and schemas equal.

# ViolationOut's fields in order, each with the column it shows ("vehicle" shows the plate).
_VIOLATION_FIELDS: tuple[tuple[str, InstrumentedAttribute[Any]], ...] = (
    ("id", Violation.id), ("vehicle", Violation.vehicle_id), ("source", Violation.source),
    ("source_ref", Violation.source_ref), ("detected_at", Violation.detected_at),
    ("detected_on", Violation.detected_on), ("region", Violation.region),
    ("vehicle_region", Violation.vehicle_region), ("details", Violation.details),
    ("case_id", Violation.case_id), ("created_at", Violation.created_at), ("status", Violation.status),
    ("withdrawn_reason", Violation.withdrawn_reason), ("withdrawn_by_event", Violation.withdrawn_by_event),
    ("use_nature", Violation.use_nature), ("fleet_code", Violation.fleet_id),  # the fleet's id, shown as its code
)


def _children(model: Any, fields: Sequence[tuple[str, Any]], order: Any) -> tuple[list[str], Select[Any]]:
    """The keys of the views of `fields` ((key, column) pairs) and the statement that reads
    them for the cases bound as `case_ids`. Built once: building it took as long as running it.
    It names the table's columns, not the ORM's attributes: a Core statement's rows skip the
    ORM's per-row layer."""
    c = model.__table__.c
    stmt = select(*(c[col.key] for _, col in fields)).where(c.case_id.in_(bindparam("case_ids", expanding=True)))
    return [key for key, _ in fields], stmt.order_by(c[order.key], c.id)


def _stored(model: Any) -> list[tuple[str, Any]]:
    """Every column, as present_record shows a record."""
    return [(col.key, col) for col in model.__table__.columns]


# ...and the evidence each one keeps, last, where ViolationOut has it.
_VIOLATIONS = _children(Violation, (*_VIOLATION_FIELDS, ("evidence", Violation.evidence_json)), Violation.detected_at)
# The records of a case, in CaseOut's field order, each listed by its own time.
_RECORDS = {
    "notices": _children(Notice, _stored(Notice), Notice.created_at),
    "penalties": _children(Penalty, _stored(Penalty), Penalty.created_at),
    "repairs": _children(Repair, _stored(Repair), Repair.completed_at),
    "retests": _children(Retest, _stored(Retest), Retest.tested_at),
}
_PLATES = select(Vehicle.id, Vehicle.plate, Vehicle.plate_color).where(
    Vehicle.id.in_(bindparam("ids", expanding=True)))


def _views_by_case(
    session: Session, children: tuple[list[str], Select[Any]], case_ids: list[int],
) -> dict[int, list[dict[str, Any]]]:
    """The cases' children as views, by case: plain rows zipped by position, because ORM
    entities, or even named access to a row's values, cost milliseconds over a page."""
    keys, stmt = children
    grouped: dict[int, list[dict[str, Any]]] = {cid: [] for cid in case_ids}
    for row in session.execute(stmt, {"case_ids": case_ids}):
        view = dict(zip(keys, row, strict=True))
        grouped[view["case_id"]].append(view)
    return grouped


def vehicles_by_id(session: Session, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Each vehicle's plate and colour: all that a presented record shows of it."""
    wanted = list(set(ids))
    return {v.id: v for v in session.execute(_PLATES, {"ids": wanted})} if wanted else {}


def fleet_codes(session: Session, ids: Iterable[int | None]) -> dict[int | None, str | None]:
    """Each fleet id's code (None: no fleet), for the violations' fleets at detection."""
    wanted = {fid for fid in ids if fid is not None}
    found: dict[int | None, str | None] = {None: None}
    if wanted:
        found |= {fid: code for fid, code in session.execute(select(Fleet.id, Fleet.code).where(Fleet.id.in_(wanted)))}
    return found


def plate_of(vehicle: Vehicle | Row[Any]) -> dict[str, str]:
    return {"plate": vehicle.plate, "plate_color": vehicle.plate_color}


def present_violations(session: Session, violations: Sequence[Violation]) -> list[dict[str, Any]]:
    """Violation views with their vehicles and evidence, each kind read once for the page."""
    vehicles = vehicles_by_id(session, (v.vehicle_id for v in violations))
    codes = fleet_codes(session, (v.fleet_id for v in violations))
    found = evidence.views(session, ((v.id, v.source, v.source_ref, v.details) for v in violations),
                           evidence.kept(session, (v.id for v in violations)))
    views = []
    for violation in violations:
        view = {key: getattr(violation, col.key) for key, col in _VIOLATION_FIELDS}
        view["vehicle"] = plate_of(vehicles[violation.vehicle_id])  # replaced in place: the key keeps its position
        view["fleet_code"] = codes[violation.fleet_id]
        views.append(view | {"evidence": found[violation.id]})
    return views


def present_record(record: Any) -> dict[str, Any]:
    """A notice, penalty, repair or retest as stored (every column)."""
    return {col.key: getattr(record, col.key) for col in record.__table__.columns}


def present_cases(session: Session, cases: Sequence[Case], today: date) -> list[dict[str, Any]]:
    """Full case views, loading each kind of child once for the whole page."""
    if not cases:
        return []
    ids = [c.id for c in cases]
    violations = _views_by_case(session, _VIOLATIONS, ids)
    listed = [v for views in violations.values() for v in views]
    found = evidence.views(session, ((v["id"], v["source"], v["source_ref"], v["details"]) for v in listed),
                           {v["id"]: v["evidence"] for v in listed})
    records = {name: _views_by_case(session, children, ids) for name, children in _RECORDS.items()}
    vehicles = vehicles_by_id(session, (c.vehicle_id for c in cases))
    codes = fleet_codes(session, (v["fleet_code"] for v in listed))
    views = []
    for case in cases:
        plate = plate_of(vehicles[case.vehicle_id])
        for violation in violations[case.id]:
            violation["vehicle"] = plate
            violation["fleet_code"] = codes[violation["fleet_code"]]
            violation["evidence"] = found[violation["id"]]
        views.append({
            "id": case.id, "vehicle": plate, "region": case.region, "status": case.status,
            "opened_at": case.opened_at, "deadline_on": case.deadline_on, "overdue": is_overdue(case, today),
            "penalty_settled": case.penalty_settled, "violations": violations[case.id],
            **{name: by_case[case.id] for name, by_case in records.items()},
            "closed_at": case.closed_at, "closed_reason": case.closed_reason, "retest_passed": case.retest_passed,
            "review_required": [{"reason": r["reason"], "violation_id": r["violation_id"]}
                                for r in case.review_required or ()],
        })
    return views
