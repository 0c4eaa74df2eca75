"""The I/M case of a vehicle: at most one open at a time, moved only by `transition()`.

Every step of the loop (notice, penalty or waiver, repair, retest) goes through one
allowed-transition table and one service that checks the table, applies the step and
appends it to the audit trail, so the trail alone replays to the case's status.

Where API.md is silent:
- a refused step stores nothing, not even the record it carried: a passing retest with
  no penalty or waiver is a 409 `penalty_required`, and the I station posts it again once
  the police have decided (the case stays `repaired`);
- a repair needs no notice; a failed retest returns the case to `notified`, and the next
  retest needs a new repair (`repair_required`);
- one penalty decision or waiver per case (`penalty_already_recorded`);
- a new notice while `notified` replaces the deadline (a re-notice after a failed retest);
- repairs and retests are found by plate and bound to the caller's org and region.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, func, not_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, object_session

from core import audit, regions, registry
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.identity import Role
from core.queue import enqueue_after_commit
from core.registry import Vehicle
from core.settings import Policy
from enforcement.models import Case, Notice, Penalty, Repair, Retest, Violation
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


# The loop itself: status -> step -> next status. A step missing here is refused.
TRANSITIONS: dict[str, dict[Step, str]] = {
    "open": {Step.NOTICE: "notified", Step.PENALTY: "open", Step.WAIVER: "open", Step.REPAIR: "repaired"},
    "notified": {
        Step.NOTICE: "notified", Step.PENALTY: "notified", Step.WAIVER: "notified", Step.REPAIR: "repaired",
    },
    "repaired": {
        Step.PENALTY: "repaired", Step.WAIVER: "repaired", Step.REPAIR: "repaired",
        Step.RETEST_PASSED: "closed", Step.RETEST_FAILED: "notified",
    },
    "closed": {},
}

# Why a step is refused where the table lacks it: the code names the missing step.
_REFUSALS: dict[tuple[str, Step], str] = {
    ("open", Step.RETEST_PASSED): "repair_required",
    ("open", Step.RETEST_FAILED): "repair_required",
    ("notified", Step.RETEST_PASSED): "repair_required",
    ("notified", Step.RETEST_FAILED): "repair_required",
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
}

_PENALTY_STEPS = (Step.PENALTY, Step.WAIVER)


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


def next_status(status: str, step: Step, *, penalty_settled: bool) -> str:
    """The status after `step`, or a Conflict whose code names what is missing."""
    if status == "closed":
        raise Conflict("the case is closed", code="case_closed")
    target = TRANSITIONS[status].get(step)
    if target is None:
        code = _REFUSALS[(status, step)]
        raise Conflict(f"{step} is not possible while the case is {status}: {code.replace('_', ' ')}", code=code)
    if step in _PENALTY_STEPS and penalty_settled:
        raise Conflict("a penalty or waiver is already recorded on this case", code="penalty_already_recorded")
    if step == Step.RETEST_PASSED and not penalty_settled:
        raise Conflict("the case cannot close before a penalty or waiver is recorded", code="penalty_required")
    return target


# --- reading -----------------------------------------------------------------------------


def in_region(column: InstrumentedAttribute[Any], scope: str | None) -> ColumnElement[bool]:
    """SQL form of `regions.contains(scope, column)`: the scope and its children."""
    if scope is None:
        return true()
    return column.startswith(regions.region_prefix(scope), autoescape=True)


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
    stmt = select(Case).where(in_region(Case.region, scope))
    if region:
        stmt = stmt.where(in_region(Case.region, region))
    if status:
        stmt = stmt.where(Case.status == status)
    if overdue is not None:
        stmt = stmt.where(overdue_clause(today) if overdue else not_(overdue_clause(today)))
    return stmt


def open_case_of(session: Session, vehicle_id: int) -> Case | None:
    return open_cases_of(session, [vehicle_id]).get(vehicle_id)


def visible_case(session: Session, case_id: int, scope: str | None) -> Case:
    """The case, or 404 when it does not exist or lies outside the reader's region."""
    case = session.get(Case, case_id)
    if case is None or not regions.contains(scope, case.region):
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


def open_or_join(session: Session, vehicle: Vehicle, violation: Violation, *, actor: str) -> Case:
    """The caller holds the vehicle lock, so the check-then-insert cannot race."""
    case = open_case_of(session, vehicle.id)
    if case is not None:
        return case
    case = Case(vehicle_id=vehicle.id, status="open", region=vehicle.region, opened_at=violation.detected_at)
    session.add(case)
    session.flush()
    audit.append(
        session, actor=actor, action="case.opened", subject_type="case", subject_id=case.id,
        data={"vehicle_id": vehicle.id, "violation_id": violation.id, "status": "open"},
    )
    return case


# --- the loop ----------------------------------------------------------------------------


def transition(session: Session, case: Case, step: Step, record: Any, *, actor: Actor, reason: str) -> Case:
    """Take one step: check role and table, store `record`, move the case, audit it.

    Nothing is written when the step is refused, so a refusal changes nothing stored.
    """
    if not actor.may(step):
        raise Forbidden(f"role {actor.role} may not record a {step}")
    before = case.status
    after = next_status(before, step, penalty_settled=case.penalty_settled)
    record.case_id = case.id
    session.add(record)
    case.status = after
    if step == Step.NOTICE:
        case.deadline_on = record.deadline_on
    elif step in _PENALTY_STEPS:
        case.penalty_settled = True
    elif step == Step.REPAIR:
        case.repaired = True
    if step == Step.RETEST_PASSED:
        case.retest_passed = True
    if after == "closed":
        close_case(case, reason="retest_passed")
    session.flush()
    audit.append(
        session, actor=actor.name, action="case.transition", subject_type="case", subject_id=case.id, reason=reason,
        data={"step": str(step), "from": before, "to": after, "record": type(record).__tablename__,
              "record_id": record.id},
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
    if case is None or not regions.contains(scope, case.region):
        raise NotFound("the vehicle has no open case", code="no_open_case")
    return case


def issue_notice(
    session: Session, case_id: int, *, actor: Actor, today: date, policy: Policy,
    deadline_days: int | None = None, issued_on: date | None = None,
) -> Notice:
    issued_on = issued_on or today
    if issued_on > today:
        raise Unprocessable("the notice cannot be issued in the future",
                            fields={"issued_on": [f"must not be after today ({today.isoformat()})"]})
    days = policy.notice_deadline_days if deadline_days is None else deadline_days
    case = _locked_case(session, case_id, actor.scope)
    notice = Notice(issued_on=issued_on, deadline_days=days, deadline_on=issued_on + timedelta(days=days),
                    issued_by=actor.name)
    transition(session, case, Step.NOTICE, notice, actor=actor,
               reason=f"notice issued on {issued_on.isoformat()}, deadline {notice.deadline_on.isoformat()}")
    return notice


def record_penalty(
    session: Session, case_id: int, *, actor: Actor, policy: Policy, decision_no: str,
    amount_yuan: int | None = None, legal_basis: str | None = None, issued_at: datetime | None = None,
) -> Penalty:
    case = _locked_case(session, case_id, actor.scope)
    penalty = Penalty(
        waived=False, decision_no=decision_no,
        amount_yuan=policy.penalty_amount_yuan if amount_yuan is None else amount_yuan,
        legal_basis=legal_basis or policy.penalty_legal_basis, code=policy.penalty_code,
        issued_at=issued_at or utcnow(), issued_by=actor.name,
    )
    transition(session, case, Step.PENALTY, penalty, actor=actor,
               reason=f"penalty {decision_no}: {penalty.amount_yuan} yuan")
    return penalty


def record_waiver(session: Session, case_id: int, *, actor: Actor, reason: str,
                  issued_at: datetime | None = None) -> Penalty:
    case = _locked_case(session, case_id, actor.scope)
    waiver = Penalty(waived=True, reason=reason, issued_at=issued_at or utcnow(), issued_by=actor.name)
    transition(session, case, Step.WAIVER, waiver, actor=actor, reason=reason)
    return waiver


def record_repair(
    session: Session, *, actor: Actor, plate: str, plate_color: str, completed_at: datetime | None = None,
    items: Sequence[str] = (), notes: str | None = None,
) -> Repair:
    case = _locked_open_case(session, plate, plate_color, actor.scope)
    repair = Repair(org_id=actor.org_id, completed_at=completed_at or utcnow(), items=list(items), notes=notes,
                    reported_by=actor.name)
    transition(session, case, Step.REPAIR, repair, actor=actor, reason=notes or "repair reported")
    return repair


def record_retest(
    session: Session, *, actor: Actor, plate: str, plate_color: str, passed: bool, method: str,
    results: dict[str, Any] | None = None, tested_at: datetime | None = None,
) -> Retest:
    case = _locked_open_case(session, plate, plate_color, actor.scope)
    retest = Retest(org_id=actor.org_id, tested_at=tested_at or utcnow(), method=method, results=results or {},
                    passed=passed, reported_by=actor.name)
    step = Step.RETEST_PASSED if passed else Step.RETEST_FAILED
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
    ("detected_on", Violation.detected_on), ("region", Violation.region), ("details", Violation.details),
    ("case_id", Violation.case_id), ("created_at", Violation.created_at), ("status", Violation.status),
    ("withdrawn_reason", Violation.withdrawn_reason), ("withdrawn_by_event", Violation.withdrawn_by_event),
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


_VIOLATIONS = _children(Violation, _VIOLATION_FIELDS, Violation.detected_at)
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


def plate_of(vehicle: Vehicle | Row[Any]) -> dict[str, str]:
    return {"plate": vehicle.plate, "plate_color": vehicle.plate_color}


def present_violation(violation: Violation, vehicle: Vehicle | Row[Any]) -> dict[str, Any]:
    view = {key: getattr(violation, col.key) for key, col in _VIOLATION_FIELDS}
    return view | {"vehicle": plate_of(vehicle)}  # replaced in place: the key keeps its position


def present_record(record: Any) -> dict[str, Any]:
    """A notice, penalty, repair or retest as stored (every column)."""
    return {col.key: getattr(record, col.key) for col in record.__table__.columns}


def present_cases(session: Session, cases: Sequence[Case], today: date) -> list[dict[str, Any]]:
    """Full case views, loading each kind of child once for the whole page."""
    if not cases:
        return []
    ids = [c.id for c in cases]
    violations = _views_by_case(session, _VIOLATIONS, ids)
    records = {name: _views_by_case(session, children, ids) for name, children in _RECORDS.items()}
    vehicles = vehicles_by_id(session, (c.vehicle_id for c in cases))
    views = []
    for case in cases:
        plate = plate_of(vehicles[case.vehicle_id])
        for violation in violations[case.id]:
            violation["vehicle"] = plate
        views.append({
            "id": case.id, "vehicle": plate, "region": case.region, "status": case.status,
            "opened_at": case.opened_at, "deadline_on": case.deadline_on, "overdue": is_overdue(case, today),
            "penalty_settled": case.penalty_settled, "violations": violations[case.id],
            **{name: by_case[case.id] for name, by_case in records.items()},
            "closed_at": case.closed_at,
        })
    return views
