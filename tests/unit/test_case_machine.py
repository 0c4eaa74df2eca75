"""The I/M loop as a state machine: random steps by random roles never reach an illegal
state, refusals change nothing, and the audit trail always replays to the case's status."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core import audit, plates
from core.audit import AuditRecord
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.registry import Vehicle
from core.settings import Policy
from enforcement import cases
from enforcement.cases import TRANSITIONS, Actor, Step, next_status
from enforcement.models import Case, Notice, Penalty, Repair, Retest, Violation
from lantian.models import metadata

ROLES = ("admin", "env_officer", "police", "transport", "repair_station", "inspection_station")
TODAY = date(2026, 11, 22)
START = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = Policy()

engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
metadata().create_all(engine)
plate_numbers = itertools.count(10000)


def may(role: str, *allowed: str) -> bool:
    return role == "admin" or role in allowed


class CaseMachine(RuleBasedStateMachine):
    """An independent model of the loop (API.md section 6 and 9, DOMAIN.md section 7),
    checked against the services step by step, with dated steps and late violations."""

    @initialize()
    def start(self) -> None:
        self.session = Session(engine)
        plate = f"苏B{next(plate_numbers)}"
        self.vehicle = Vehicle(plate=plate, plate_color="yellow", plate_key=plates.confusion_key(plate),
                               region="320200")
        self.session.add(self.vehicle)
        self.session.flush()
        self.refs = itertools.count()
        self.clock = START
        self.case_id = 0
        self.answered: list[tuple[datetime, int]] = []  # (latest repair, case id) of cases a retest closed
        self.violation(late=0)

    def teardown(self) -> None:
        self.session.rollback()
        self.session.close()

    # --- model ---------------------------------------------------------------------------

    def new_case(self, case_id: int) -> None:
        self.case_id, self.status, self.retest_passed = case_id, "open", False
        self.active: dict[int, datetime] = {}
        self.covered: set[int] = set()
        self.repairs: list[datetime] = []
        self.last_notice: tuple[date, int] | None = None

    @property
    def settled(self) -> bool:
        return set(self.active) <= self.covered

    def tick(self) -> datetime:
        self.clock += timedelta(hours=1)
        return self.clock

    def expect(self, step: Step, role: str, run, *, by_plate: bool = False, late: bool = False,  # type: ignore[no-untyped-def]
               nothing_left: bool = False, replay: bool = False) -> bool:
        """Run `run()`, which must fail exactly as the model says, or succeed and move as it says;
        whether the step was stored.
        `late`: the step is dated before its cause; `nothing_left`: a penalty would cover nothing;
        `replay`: the same notice as the case's latest, which answers the stored one, changing nothing."""
        allowed = may(role, *cases.STEP_ROLES[step])
        if allowed and replay:
            before = self.counts()
            assert run()[1] is False, "a repeated notice was stored again"
            assert self.counts() == before, "a repeated notice wrote something"
            return False
        if by_plate and self.status == "closed":
            error: type[Exception] | None = NotFound
        elif not allowed:
            error = Forbidden
        elif self.status == "closed":
            error = Conflict
        else:
            error = self.refusal(step) or (Conflict if nothing_left else None) or (Unprocessable if late else None)
        before = self.counts()
        if error is None:
            run()
            self.apply(step)
            return True
        with pytest.raises(error):
            run()
        assert self.counts() == before, "a refused step wrote something"
        return False

    def refusal(self, step: Step) -> type[Exception] | None:
        if self.retest_passed and step not in (Step.PENALTY, Step.WAIVER):
            return Conflict  # penalty_required: the passing retest waits for the penalties
        if step in (Step.RETEST_PASSED, Step.RETEST_FAILED) and self.status != "repaired":
            return Conflict
        if step == Step.NOTICE and self.status == "repaired":
            return Conflict
        return None

    def apply(self, step: Step) -> None:
        if step in (Step.PENALTY, Step.WAIVER):
            self.covered |= set(self.active)
            if self.retest_passed:
                self.close()
        elif step == Step.NOTICE:
            self.status = "notified"
        elif step == Step.REPAIR:
            self.status = "repaired"
        elif step == Step.RETEST_PASSED:
            self.retest_passed = True
            if self.settled:
                self.close()
        elif step == Step.RETEST_FAILED:
            self.status = "notified"

    def close(self) -> None:
        self.status = "closed"
        self.answered.append((max(self.repairs), self.case_id))

    def counts(self) -> tuple[int, ...]:
        audit.write_staged(self.session)  # this machine never commits: chain what was staged
        return tuple(self.session.scalar(select(func.count()).select_from(m))
                     for m in (Case, Notice, Penalty, Repair, Retest, AuditRecord))

    def actor(self, role: str) -> Actor:
        return Actor(f"user:{role}", role)

    # --- rules ---------------------------------------------------------------------------

    @rule(late=st.integers(0, 12))
    def violation(self, late: int) -> None:
        """A violation detected now, or `late` hours ago (uploaded late): it joins the closed case
        whose repair answers it, or the open case (back to notified after its repair), or opens one."""
        at = self.tick() - timedelta(hours=late)
        violation = Violation(vehicle_id=self.vehicle.id, source="road_check", source_ref=f"{self.vehicle.id}-"
                              f"{next(self.refs)}", detected_at=at, detected_on=at.date(), region="320200")
        self.session.add(violation)
        self.session.flush()
        case = cases.open_or_join(self.session, self.vehicle, violation, actor="test")
        assert violation.case_id == case.id
        joins = [cid for repaired, cid in sorted(self.answered) if at <= repaired]
        if joins:
            assert case.id == joins[0] and case.status == "closed", "a repaired fault opened a new loop"
            event("joined a closed case")
            return
        if self.case_id == 0 or self.status == "closed":
            assert case.id != self.case_id, "a violation joined a case that its repair does not answer"
            self.new_case(case.id)
        assert case.id == self.case_id, "a second case opened beside an open one"
        if self.status == "repaired" and self.repairs and at > max(self.repairs):
            self.status, self.retest_passed = "notified", False
            event("violation after the repair")
        self.active[violation.id] = at

    @rule(role=st.sampled_from(ROLES), days=st.integers(1, 60), back=st.integers(0, 30))
    def notice(self, role: str, days: int, back: int) -> None:
        issued = date.fromordinal(TODAY.toordinal() - back)
        if self.expect(Step.NOTICE, role, lambda: cases.issue_notice(
            self.session, self.case_id, actor=self.actor(role), today=TODAY, policy=POLICY, deadline_days=days,
            issued_on=issued), late=issued < min(self.active.values()).date(),
            replay=self.last_notice == (issued, days)):
            self.last_notice = (issued, days)

    @rule(role=st.sampled_from(ROLES), amount=st.none() | st.integers(1, 5000))
    def penalty(self, role: str, amount: int | None) -> None:
        self.expect(Step.PENALTY, role, lambda: cases.record_penalty(
            self.session, self.case_id, actor=self.actor(role), policy=POLICY, decision_no="D", amount_yuan=amount),
            nothing_left=self.settled)

    @rule(role=st.sampled_from(ROLES))
    def waiver(self, role: str) -> None:
        self.expect(Step.WAIVER, role, lambda: cases.record_waiver(
            self.session, self.case_id, actor=self.actor(role), reason="first offence"), nothing_left=self.settled)

    @rule(role=st.sampled_from(ROLES), back=st.integers(0, 8))
    def repair(self, role: str, back: int) -> None:
        at = self.tick() - timedelta(minutes=30 * back)
        late = self.status != "closed" and at <= min(self.active.values())
        self.expect(Step.REPAIR, role, lambda: cases.record_repair(
            self.session, actor=self.actor(role), plate=self.vehicle.plate, plate_color="yellow", completed_at=at,
            items=["DPF"]), by_plate=True, late=late)
        if self.session.scalar(select(func.count()).select_from(Repair).where(
                Repair.case_id == self.case_id, Repair.completed_at == at)):
            self.repairs.append(at)

    @rule(role=st.sampled_from(ROLES), passed=st.booleans(), back=st.integers(0, 4))
    def retest(self, role: str, passed: bool, back: int) -> None:
        at = self.tick() - timedelta(minutes=30 * back)
        step = Step.RETEST_PASSED if passed else Step.RETEST_FAILED
        self.expect(step, role, lambda: cases.record_retest(
            self.session, actor=self.actor(role), plate=self.vehicle.plate, plate_color="yellow", passed=passed,
            method="lug_down", tested_at=at), by_plate=True, late=bool(self.repairs) and at <= max(self.repairs))

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        case = self.session.get(Case, self.case_id)
        assert (case.status, case.retest_passed) == (self.status, self.retest_passed)
        assert case.status == "closed" or case.penalty_settled == self.settled
        assert (case.closed_at is not None) == (case.status == "closed")
        assert cases.covered_violations(self.session, self.case_id) == self.covered
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
            assert workshop[-1] in ((Step.REPAIR, Step.RETEST_PASSED) if self.retest_passed else (Step.REPAIR,))

    @invariant()
    def audit_trail_replays_to_the_status(self) -> None:
        audit.write_staged(self.session)
        records = self.session.scalars(select(AuditRecord).where(
            AuditRecord.subject_type == "case", AuditRecord.subject_id == str(self.case_id),
            AuditRecord.action == "case.transition").order_by(AuditRecord.id))
        state, waiting = "open", False
        for record in records:
            step = Step(record.data["step"])
            assert (record.data["from"], record.data["retest_passed"]) == (state, waiting)
            state = next_status(state, step, covered=record.data["covered"], retest_passed=waiting)
            waiting = (waiting or step == Step.RETEST_PASSED) and step != Step.VIOLATION_AFTER_REPAIR
            assert record.data["to"] == state
        assert state == self.session.get(Case, self.case_id).status


CaseMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestCaseMachine = CaseMachine.TestCase


@pytest.mark.parametrize("status", sorted(TRANSITIONS))
@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("covered", [False, True])
@pytest.mark.parametrize("waiting", [False, True])
def test_every_refusal_names_a_code(status: str, step: Step, covered: bool, waiting: bool) -> None:
    """The table is total: each (status, step) either moves or names what is missing."""
    try:
        assert next_status(status, step, covered=covered, retest_passed=waiting) in TRANSITIONS
    except Conflict as refusal:
        assert refusal.code in {"case_closed", "repair_required", "retest_required", "penalty_required"}
