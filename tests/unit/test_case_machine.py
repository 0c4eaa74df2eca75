"""The I/M loop as a state machine: random steps by random roles never reach an illegal
state, refusals change nothing, and the audit trail always replays to the case's status."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core import audit, plates
from core.audit import AuditRecord
from core.errors import Conflict, Forbidden, NotFound
from core.registry import Vehicle
from core.settings import Policy
from enforcement import cases
from enforcement.cases import TRANSITIONS, Actor, Step, next_status
from enforcement.models import Case, Notice, Penalty, Repair, Retest, Violation
from lantian.models import metadata

ROLES = ("admin", "env_officer", "police", "transport", "repair_station", "inspection_station")
TODAY = date(2026, 11, 22)
POLICY = Policy()

engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
metadata().create_all(engine)
plate_numbers = itertools.count(10000)


def may(role: str, *allowed: str) -> bool:
    return role == "admin" or role in allowed


class CaseMachine(RuleBasedStateMachine):
    """An independent model of API.md's table, checked against the services step by step."""

    @initialize()
    def start(self) -> None:
        self.session = Session(engine)
        plate = f"苏B{next(plate_numbers)}"
        self.vehicle = Vehicle(plate=plate, plate_color="yellow", plate_key=plates.confusion_key(plate),
                               region="320200")
        self.session.add(self.vehicle)
        self.session.flush()
        self.refs = itertools.count()
        self.case_id = 0
        self.violation()

    def teardown(self) -> None:
        self.session.rollback()
        self.session.close()

    # --- model ---------------------------------------------------------------------------

    def expect(self, step: Step, role: str, run, *, by_plate: bool = False) -> None:  # type: ignore[no-untyped-def]
        """Run `run()`, which must fail exactly as the model says, or succeed and move as it says."""
        allowed = may(role, *cases.STEP_ROLES[step])
        if by_plate and self.status == "closed":
            error: type[Exception] | None = NotFound
        elif not allowed:
            error = Forbidden
        elif self.status == "closed":
            error = Conflict
        else:
            error = self.refusal(step)
        before = self.counts()
        if error is None:
            run()
            self.apply(step)
        else:
            with pytest.raises(error):
                run()
            assert self.counts() == before, "a refused step wrote something"

    def refusal(self, step: Step) -> type[Exception] | None:
        if step in (Step.RETEST_PASSED, Step.RETEST_FAILED) and self.status != "repaired":
            return Conflict
        if step == Step.NOTICE and self.status == "repaired":
            return Conflict
        if step in (Step.PENALTY, Step.WAIVER) and self.settled:
            return Conflict
        if step == Step.RETEST_PASSED and not self.settled:
            return Conflict
        return None

    def apply(self, step: Step) -> None:
        if step in (Step.PENALTY, Step.WAIVER):
            self.settled = True
        elif step == Step.NOTICE:
            self.status = "notified"
        elif step == Step.REPAIR:
            self.status = "repaired"
        elif step == Step.RETEST_PASSED:
            self.status = "closed"
        elif step == Step.RETEST_FAILED:
            self.status = "notified"

    def counts(self) -> tuple[int, ...]:
        audit.write_staged(self.session)  # this machine never commits: chain what was staged
        return tuple(self.session.scalar(select(func.count()).select_from(m))
                     for m in (Case, Notice, Penalty, Repair, Retest, AuditRecord))

    def actor(self, role: str) -> Actor:
        return Actor(f"user:{role}", role)

    # --- rules ---------------------------------------------------------------------------

    @rule()
    def violation(self) -> None:
        """A new violation joins the open case, or opens a new one once it is closed."""
        at = datetime(2026, 11, 1, tzinfo=UTC)
        violation = Violation(vehicle_id=self.vehicle.id, source="road_check", source_ref=f"{self.vehicle.id}-"
                              f"{next(self.refs)}", detected_at=at, detected_on=at.date(), region="320200")
        self.session.add(violation)
        self.session.flush()
        case = cases.open_or_join(self.session, self.vehicle, violation, actor="test")
        if case.id != self.case_id:
            assert self.case_id == 0 or self.status == "closed", "a second case opened beside an open one"
            self.case_id, self.status, self.settled = case.id, "open", False

    @rule(role=st.sampled_from(ROLES), days=st.integers(1, 60), back=st.integers(0, 30))
    def notice(self, role: str, days: int, back: int) -> None:
        self.expect(Step.NOTICE, role, lambda: cases.issue_notice(
            self.session, self.case_id, actor=self.actor(role), today=TODAY, policy=POLICY, deadline_days=days,
            issued_on=date.fromordinal(TODAY.toordinal() - back)))

    @rule(role=st.sampled_from(ROLES), amount=st.none() | st.integers(1, 5000))
    def penalty(self, role: str, amount: int | None) -> None:
        self.expect(Step.PENALTY, role, lambda: cases.record_penalty(
            self.session, self.case_id, actor=self.actor(role), policy=POLICY, decision_no="D", amount_yuan=amount))

    @rule(role=st.sampled_from(ROLES))
    def waiver(self, role: str) -> None:
        self.expect(Step.WAIVER, role, lambda: cases.record_waiver(
            self.session, self.case_id, actor=self.actor(role), reason="first offence"))

    @rule(role=st.sampled_from(ROLES))
    def repair(self, role: str) -> None:
        self.expect(Step.REPAIR, role, lambda: cases.record_repair(
            self.session, actor=self.actor(role), plate=self.vehicle.plate, plate_color="yellow"), by_plate=True)

    @rule(role=st.sampled_from(ROLES), passed=st.booleans())
    def retest(self, role: str, passed: bool) -> None:
        step = Step.RETEST_PASSED if passed else Step.RETEST_FAILED
        self.expect(step, role, lambda: cases.record_retest(
            self.session, actor=self.actor(role), plate=self.vehicle.plate, plate_color="yellow", passed=passed,
            method="lug_down"), by_plate=True)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        case = self.session.get(Case, self.case_id)
        assert (case.status, case.penalty_settled) == (self.status, self.settled)
        assert (case.closed_at is not None) == (case.status == "closed")
        open_cases = self.session.scalar(select(func.count()).select_from(Case).where(
            Case.vehicle_id == self.vehicle.id, Case.status != "closed"))
        assert open_cases <= 1

    def steps(self) -> list[Step]:
        audit.write_staged(self.session)
        records = self.session.scalars(select(AuditRecord).where(
            AuditRecord.subject_type == "case", AuditRecord.subject_id == str(self.case_id),
            AuditRecord.action == "case.transition").order_by(AuditRecord.id))
        return [Step(r.data["step"]) for r in records]

    @invariant()
    def closed_only_after_repair_retest_and_penalty(self) -> None:
        workshop = [s for s in self.steps() if s in (Step.REPAIR, Step.RETEST_PASSED, Step.RETEST_FAILED)]
        if self.status == "closed":
            assert workshop[-2:] == [Step.REPAIR, Step.RETEST_PASSED] and self.settled
            event("closed")
        if self.status == "repaired":
            assert workshop[-1] == Step.REPAIR

    @invariant()
    def audit_trail_replays_to_the_status(self) -> None:
        audit.write_staged(self.session)
        records = self.session.scalars(select(AuditRecord).where(
            AuditRecord.subject_type == "case", AuditRecord.subject_id == str(self.case_id),
            AuditRecord.action == "case.transition").order_by(AuditRecord.id))
        state, settled = "open", False
        for record in records:
            step = Step(record.data["step"])
            assert record.data["from"] == state
            state = next_status(state, step, penalty_settled=settled)
            settled = settled or step in (Step.PENALTY, Step.WAIVER)
            assert record.data["to"] == state == TRANSITIONS[record.data["from"]][step]
        assert state == self.session.get(Case, self.case_id).status


CaseMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestCaseMachine = CaseMachine.TestCase


@pytest.mark.parametrize("status", sorted(TRANSITIONS))
@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("settled", [False, True])
def test_every_refusal_names_a_code(status: str, step: Step, settled: bool) -> None:
    """The table is total: each (status, step) either moves or names what is missing."""
    try:
        assert next_status(status, step, penalty_settled=settled) in TRANSITIONS
    except Conflict as refusal:
        assert refusal.code in {"case_closed", "repair_required", "retest_required", "penalty_required",
                                "penalty_already_recorded"}
