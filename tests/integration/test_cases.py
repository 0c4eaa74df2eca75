"""The I/M closed loop end to end: notice, penalty or waiver, repair, retest (API.md section 6)."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select, text

from core.audit import AuditRecord
from enforcement.models import Case, Notice, Penalty, Repair, Retest
from tests.conftest import cli_json
from tests.factories import CST

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLATE = "苏B12345"


def local_today() -> date:
    return datetime.now(SHANGHAI).date()


class Loop:
    """One person per role of the loop, and the calls they make."""

    def __init__(self, client: Any, login: Any, runner: Any, region: str = "320200") -> None:
        self.client = client
        self.officer = login("env_officer", region)
        self.police = login("police", region)
        cli_json(runner, "orgs", "create", "--code", "M001", "--kind", "repair_station", "--name", "M", "--region",
                 region)
        cli_json(runner, "orgs", "create", "--code", "I001", "--kind", "inspection_station", "--name", "I",
                 "--region", region)
        self.repairer = login("repair_station", org="M001")
        self.inspector = login("inspection_station", org="I001")

    def supervisory_test(self, plate: str = PLATE, color: str = "yellow", *, passed: bool = False,
                         headers: dict | None = None, **overrides: Any) -> Any:
        body = {
            "plate": plate, "plate_color": color, "tested_at": (datetime.now(CST) - timedelta(hours=1)).isoformat(),
            "kind": "road_check", "method": "free_acceleration", "results": {"opacity_m1": 2.1},
            "passed": passed, "location": "G2 K1203",
        } | overrides
        return self.client.post("/api/v1/supervisory-tests", json=body, headers=headers or self.officer)

    def open_case(self, plate: str = PLATE, **overrides: Any) -> int:
        r = self.supervisory_test(plate, **overrides)
        assert r.status_code == 201, r.get_json()
        return r.get_json()["case_id"]

    def notice(self, case_id: int, **body: Any) -> Any:
        return self.client.post(f"/api/v1/cases/{case_id}/notices", json=body, headers=self.officer)

    def penalty(self, case_id: int, **body: Any) -> Any:
        return self.client.post(f"/api/v1/cases/{case_id}/penalties", json={"decision_no": "D-1"} | body,
                                headers=self.police)

    def waiver(self, case_id: int, reason: str = "first offence, repaired at once") -> Any:
        return self.client.post(f"/api/v1/cases/{case_id}/penalties", json={"waived": True, "reason": reason},
                                headers=self.police)

    def repair(self, plate: str = PLATE, color: str = "yellow", **body: Any) -> Any:
        return self.client.post("/api/v1/repairs", headers=self.repairer, json={
            "plate": plate, "plate_color": color, "completed_at": datetime.now(CST).isoformat(),
            "items": ["replaced DPF"], "notes": "DPF clogged",
        } | body)

    def retest(self, plate: str = PLATE, passed: bool = True, color: str = "yellow") -> Any:
        return self.client.post("/api/v1/retests", headers=self.inspector, json={
            "plate": plate, "plate_color": color, "tested_at": datetime.now(CST).isoformat(),
            "method": "lug_down", "results": {"opacity_pct": 8.0}, "passed": passed,
        })

    def case(self, case_id: int) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/cases/{case_id}", headers=self.police)
        assert r.status_code == 200, r.get_json()
        return r.get_json()


@pytest.fixture()
def loop(client: Any, login: Any, runner: Any) -> Loop:
    return Loop(client, login, runner)


def stored_counts(app: Any) -> dict[str, Any]:
    """Everything a refused call must leave unchanged."""
    with app.extensions["lantian"].sessions() as s:
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                  for m in (Case, Notice, Penalty, Repair, Retest, AuditRecord)}
        counts["statuses"] = sorted(s.execute(select(Case.id, Case.status, Case.deadline_on)).all())
        return counts


def transitions(app: Any, case_id: int) -> list[tuple[str, str, str]]:
    with app.extensions["lantian"].sessions() as s:
        rows = s.scalars(select(AuditRecord).where(
            AuditRecord.subject_type == "case", AuditRecord.subject_id == str(case_id),
            AuditRecord.action == "case.transition").order_by(AuditRecord.id))
        return [(r.data["step"], r.data["from"], r.data["to"]) for r in rows]


# --- the loop ----------------------------------------------------------------------------


def test_full_loop_with_a_failed_retest(app, loop):
    case_id = loop.open_case()
    view = loop.case(case_id)
    assert view["status"] == "open" and view["deadline_on"] is None and not view["overdue"]
    assert view["vehicle"] == {"plate": PLATE, "plate_color": "yellow"}
    assert [v["source"] for v in view["violations"]] == ["road_check"]

    r = loop.notice(case_id, deadline_days=10)
    assert r.status_code == 201, r.get_json()
    notice = r.get_json()
    assert notice["issued_on"] == local_today().isoformat()
    assert notice["deadline_on"] == (local_today() + timedelta(days=10)).isoformat()
    assert loop.case(case_id)["status"] == "notified"

    r = loop.penalty(case_id)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["amount_yuan"] == app.extensions["lantian"].settings.policy.penalty_amount_yuan
    assert r.get_json()["legal_basis"] == app.extensions["lantian"].settings.policy.penalty_legal_basis
    assert loop.case(case_id)["status"] == "notified"

    r = loop.repair()
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["case_id"] == case_id and r.get_json()["items"] == ["replaced DPF"]
    assert loop.case(case_id)["status"] == "repaired"

    r = loop.retest(passed=False)
    assert r.status_code == 201 and r.get_json()["passed"] is False
    assert loop.case(case_id)["status"] == "notified"

    assert loop.retest().get_json()["error"]["code"] == "repair_required"  # a new repair is needed first
    assert loop.repair().status_code == 201
    r = loop.retest()
    assert r.status_code == 201, r.get_json()
    view = loop.case(case_id)
    assert view["status"] == "closed" and view["closed_at"] and not view["overdue"]
    assert [len(view[k]) for k in ("notices", "penalties", "repairs", "retests")] == [1, 1, 2, 2]
    assert transitions(app, case_id) == [
        ("notice", "open", "notified"), ("penalty", "notified", "notified"), ("repair", "notified", "repaired"),
        ("retest_failed", "repaired", "notified"), ("repair", "notified", "repaired"),
        ("retest_passed", "repaired", "closed"),
    ]


def test_waiver_and_repair_without_notice_close_the_case(app, loop):
    case_id = loop.open_case()
    assert loop.repair().status_code == 201  # API.md: a repair attaches to the open case, notice or not
    r = loop.waiver(case_id)
    assert r.status_code == 201 and r.get_json()["waived"] is True and r.get_json()["amount_yuan"] is None
    assert loop.retest().status_code == 201
    assert loop.case(case_id)["status"] == "closed"


def test_a_new_violation_after_closing_opens_a_new_case(loop):
    first = loop.open_case()
    loop.waiver(first)
    loop.repair(completed_at=(datetime.now(CST) - timedelta(minutes=50)).isoformat())
    loop.retest()
    second = loop.open_case(tested_at=(datetime.now(CST) - timedelta(minutes=10)).isoformat())
    assert second != first and loop.case(second)["status"] == "open"


def test_violations_join_the_open_case(loop):
    first = loop.open_case()
    assert loop.open_case(kind="depot_check") == first
    assert len(loop.case(first)["violations"]) == 2


def test_listed_case_is_the_dumped_case_key_for_key(loop):
    """GET /cases answers its views without marshmallow; GET /cases/{id} dumps them through CaseOut."""
    case_id = loop.open_case()
    loop.open_case(kind="depot_check")
    for step in (loop.notice(case_id), loop.penalty(case_id), loop.repair(), loop.retest(passed=False)):
        assert step.status_code == 201, step.get_json()
    ordered = {"object_pairs_hook": list}  # the order of keys is compared too
    listed = json.loads(loop.client.get("/api/v1/cases", headers=loop.police).data, **ordered)
    single = json.loads(loop.client.get(f"/api/v1/cases/{case_id}", headers=loop.police).data, **ordered)
    assert listed == [("items", [single]), ("next_cursor", None)]
    assert all(dict(single)[k] for k in ("violations", "notices", "penalties", "repairs", "retests"))


# --- refusals: 409 naming the missing step, nothing stored ---------------------------------


def test_retest_before_any_repair_is_repair_required(app, loop):
    case_id = loop.open_case()
    loop.notice(case_id)
    before = stored_counts(app)
    r = loop.retest()
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "repair_required"
    assert stored_counts(app) == before


def test_passing_retest_waits_for_the_penalty_that_closes_the_case(app, loop):
    case_id = loop.open_case()
    loop.repair()
    r = loop.retest()
    assert r.status_code == 201, r.get_json()
    view = loop.case(case_id)
    assert (view["status"], view["retest_passed"], view["closed_reason"]) == ("repaired", True, None)
    before = stored_counts(app)
    for r in (loop.retest(), loop.retest(passed=False), loop.repair()):  # only the penalty is missing now
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "penalty_required"
    assert loop.notice(case_id).get_json()["error"]["code"] == "penalty_required"
    assert stored_counts(app) == before
    assert loop.penalty(case_id).status_code == 201
    view = loop.case(case_id)
    assert (view["status"], view["retest_passed"], view["closed_reason"]) == ("closed", True, "retest_passed")
    assert transitions(app, case_id)[-2:] == [("retest_passed", "repaired", "repaired"),
                                             ("penalty", "repaired", "closed")]


def test_notice_while_repaired_is_retest_required(app, loop):
    case_id = loop.open_case()
    loop.repair()
    r = loop.notice(case_id)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "retest_required"


def test_second_penalty_is_refused(app, loop):
    case_id = loop.open_case()
    assert loop.penalty(case_id).status_code == 201
    before = stored_counts(app)
    for r in (loop.penalty(case_id, decision_no="D-2"), loop.waiver(case_id)):
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "penalty_already_recorded"
    assert stored_counts(app) == before


def test_anything_on_a_closed_case_is_case_closed(app, loop):
    case_id = loop.open_case()
    loop.penalty(case_id)
    loop.repair()
    loop.retest()
    before = stored_counts(app)
    for r in (loop.notice(case_id), loop.penalty(case_id), loop.waiver(case_id)):
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "case_closed"
    for r in (loop.repair(), loop.retest()):  # by plate: the vehicle has no open case any more
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "no_open_case"
    assert stored_counts(app) == before


def test_repair_without_open_case_or_vehicle_is_404(loop):
    assert loop.repair().get_json()["error"]["code"] == "vehicle_not_found"
    loop.supervisory_test(passed=True)  # known vehicle, no case
    assert loop.repair().get_json()["error"]["code"] == "no_open_case"
    assert loop.client.get("/api/v1/cases/999999", headers=loop.police).status_code == 404


# --- bad bodies: 422, nothing stored ------------------------------------------------------


def test_bad_bodies_are_422_and_change_nothing(app, loop):
    case_id = loop.open_case()
    tomorrow = (local_today() + timedelta(days=1)).isoformat()
    future = (datetime.now(CST) + timedelta(hours=1)).isoformat()
    before = stored_counts(app)
    cases = {
        "issued_on": loop.notice(case_id, issued_on=tomorrow),
        "deadline_days": loop.notice(case_id, deadline_days=0),
        "amount_yuan": loop.penalty(case_id, amount_yuan=-200),
        "issued_at": loop.penalty(case_id, issued_at=future),
        "reason": loop.client.post(f"/api/v1/cases/{case_id}/penalties", json={"waived": True},
                                   headers=loop.police),
        "decision_no": loop.client.post(f"/api/v1/cases/{case_id}/penalties", json={}, headers=loop.police),
        "plate_color": loop.repair(color="purple"),
        "completed_at": loop.repair(completed_at=future),
        "plate": loop.repair(plate="苏BI2345"),
        "items": loop.repair(items="replaced DPF"),
    }
    for field, r in cases.items():
        assert r.status_code == 422, (field, r.get_json())
        assert r.get_json()["error"]["code"] == "validation_error"
        assert field in r.get_json()["error"]["fields"], (field, r.get_json())
    assert stored_counts(app) == before


def test_notice_deadline_defaults_from_policy_and_back_dated_notice(app, loop):
    case_id = loop.open_case()
    days = app.extensions["lantian"].settings.policy.notice_deadline_days
    issued = local_today() - timedelta(days=3)
    r = loop.notice(case_id, issued_on=issued.isoformat())
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "step_before_cause"  # before the violation
    case_id = loop.open_case("苏B54321", tested_at=(datetime.now(CST) - timedelta(days=4)).isoformat())
    r = loop.notice(case_id, issued_on=issued.isoformat())
    assert r.status_code == 201
    assert r.get_json()["deadline_days"] == days
    assert loop.case(case_id)["deadline_on"] == (issued + timedelta(days=days)).isoformat()


# --- overdue: calendar days in the configured time zone -------------------------------------


def _case_due(loop: Loop, deadline: date, plate: str = PLATE) -> int:
    issued = deadline - timedelta(days=15)
    case_id = loop.open_case(plate, tested_at=_shanghai(issued, 9).isoformat())
    assert loop.notice(case_id, issued_on=issued.isoformat(), deadline_days=15).status_code == 201
    return case_id


_READERS = itertools.count()


def _read_at(loop: Loop, login: Any, instant: datetime, path: str) -> Any:
    """Read as a police officer signed in at `instant` (a token is never valid before it is issued)."""
    with time_machine.travel(instant, tick=False):
        headers = login("police", "320200", username=f"police-at-{next(_READERS)}")
        return loop.client.get(path, headers=headers).get_json()


def _shanghai(day: date, hours: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(hours=hours)


def test_deadline_day_is_not_overdue_the_day_after_is(loop, login):
    deadline = local_today() - timedelta(days=3)
    case_id = _case_due(loop, deadline)
    assert _read_at(loop, login, _shanghai(deadline, 23.9), f"/api/v1/cases/{case_id}")["overdue"] is False
    assert _read_at(loop, login, _shanghai(deadline, 24.1), f"/api/v1/cases/{case_id}")["overdue"] is True
    assert loop.case(case_id)["overdue"] is True


def test_overdue_follows_shanghai_days_not_utc(loop, login):
    deadline = local_today() - timedelta(days=3)
    case_id = _case_due(loop, deadline)
    # 00:30 in Shanghai the day after the deadline is 16:30 UTC on the deadline day itself.
    just_after = _shanghai(deadline + timedelta(days=1), 0.5)
    assert just_after.astimezone(ZoneInfo("UTC")).date() == deadline
    assert _read_at(loop, login, just_after, f"/api/v1/cases/{case_id}")["overdue"] is True
    listed = _read_at(loop, login, just_after, "/api/v1/cases?overdue=true")["items"]
    assert [c["id"] for c in listed] == [case_id]
    # 23:30 in Shanghai on the deadline day, whereas UTC is then 15:30 on that day.
    before = just_after - timedelta(hours=1)
    assert _read_at(loop, login, before, "/api/v1/cases?overdue=true")["items"] == []
    assert len(_read_at(loop, login, before, "/api/v1/cases?overdue=false")["items"]) == 1


def test_deadline_today_in_shanghai_tomorrow_in_utc_is_not_overdue(loop, login):
    deadline = local_today() - timedelta(days=3)
    case_id = _case_due(loop, deadline)
    # 07:00 in Shanghai on the deadline day: UTC is still the day before.
    morning = _shanghai(deadline, 7)
    assert morning.astimezone(ZoneInfo("UTC")).date() == deadline - timedelta(days=1)
    assert _read_at(loop, login, morning, f"/api/v1/cases/{case_id}")["overdue"] is False


def test_closed_case_is_never_overdue(loop):
    case_id = _case_due(loop, local_today() - timedelta(days=5))
    loop.penalty(case_id)
    loop.repair()
    loop.retest()
    assert loop.case(case_id)["overdue"] is False


def test_mark_overdue_job_audits_each_deadline_once(app, loop):
    from workers import jobs

    late = _case_due(loop, local_today() - timedelta(days=1))
    _case_due(loop, local_today(), "苏B54321")  # due today: not late yet
    assert jobs.mark_overdue() == 1
    assert jobs.mark_overdue() == 0
    with app.extensions["lantian"].sessions() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.action == "case.overdue")).all()
    assert [(r.subject_id, r.actor) for r in rows] == [(str(late), "system:overdue")]
    assert "workers.jobs.mark_overdue" in dict(__import__("workers.runner").runner.PERIODIC)


# --- the audit trail ----------------------------------------------------------------------


def _verify(runner: Any) -> tuple[int, dict[str, Any]]:
    import json

    from lantian.cli import cli

    result = runner.invoke(cli, ["audit", "verify"])
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


def _run_loop(loop: Loop) -> int:
    case_id = loop.open_case()
    loop.notice(case_id)
    loop.penalty(case_id)
    loop.repair()
    loop.retest()
    return case_id


def test_audit_verify_reports_an_edited_transition(app, loop, runner):
    case_id = _run_loop(loop)
    assert _verify(runner)[0] == 0
    with app.extensions["lantian"].engine.begin() as conn:
        target = conn.execute(text(
            "SELECT id FROM audit_records WHERE action = 'case.transition' AND subject_id = :c ORDER BY id LIMIT 1"
        ), {"c": str(case_id)}).scalar_one()
        conn.execute(text("UPDATE audit_records SET actor = 'user:someone-else' WHERE id = :i"), {"i": target})
    code, report = _verify(runner)
    assert code == 1 and report["ok"] is False
    assert report["broken_at"] == target and report["problem"] == "record content altered"


def test_audit_verify_reports_a_deleted_middle_record(app, loop, runner):
    _run_loop(loop)
    with app.extensions["lantian"].engine.begin() as conn:
        ids = conn.execute(text("SELECT id FROM audit_records ORDER BY id")).scalars().all()
        middle = ids[len(ids) // 2]
        conn.execute(text("DELETE FROM audit_records WHERE id = :i"), {"i": middle})
    code, report = _verify(runner)
    assert code == 1 and report["broken_at"] == ids[len(ids) // 2 + 1]
    assert report["problem"] == "previous record missing or altered"


# --- step order, late violations, penalties per violation (DOMAIN.md section 7) ------------


def _ago(**delta: float) -> str:
    return (datetime.now(CST) - timedelta(**delta)).isoformat()


def test_each_step_follows_its_cause_to_the_second(app, loop):
    detected = datetime.now(CST).replace(microsecond=0) - timedelta(days=2)
    case_id = loop.open_case(tested_at=detected.isoformat())
    day = detected.date()  # CST is Shanghai's offset: the local day of detection
    before = stored_counts(app)
    refusals = {
        "issued_on": loop.notice(case_id, issued_on=(day - timedelta(days=1)).isoformat()),
        "completed_at": loop.repair(completed_at=detected.isoformat()),  # at the detection: not after it
    }
    for name, r in refusals.items():
        error = r.get_json()["error"]
        assert r.status_code == 422 and error["code"] == "step_before_cause", error
        assert list(error["fields"]) == [name]
        assert error["message"].count(str(day.year)) >= 2  # both dates are named
    assert stored_counts(app) == before
    assert loop.notice(case_id, issued_on=day.isoformat()).status_code == 201  # the same day is fine
    repaired = detected + timedelta(seconds=1)
    assert loop.repair(completed_at=repaired.isoformat()).status_code == 201
    before = stored_counts(app)
    r = loop.client.post("/api/v1/retests", headers=loop.inspector, json={
        "plate": PLATE, "plate_color": "yellow", "tested_at": repaired.isoformat(), "method": "lug_down",
        "passed": True})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "step_before_cause"
    assert repaired.astimezone(ZoneInfo("UTC")).isoformat() in r.get_json()["error"]["message"]
    assert stored_counts(app) == before
    assert loop.retest().status_code == 201


def test_a_violation_after_the_repair_sends_the_case_back_to_notified(app, loop):
    case_id = loop.open_case(tested_at=_ago(hours=5))
    loop.notice(case_id)
    loop.waiver(case_id)
    assert loop.repair(completed_at=_ago(hours=4)).status_code == 201
    assert loop.open_case(tested_at=_ago(hours=4, seconds=10)) == case_id  # before the repair: answered by it
    assert loop.case(case_id)["status"] == "repaired"
    assert loop.open_case(kind="depot_check", tested_at=_ago(hours=3)) == case_id
    view = loop.case(case_id)
    assert view["status"] == "notified" and len(view["violations"]) == 3
    assert transitions(app, case_id)[-1] == ("violation_after_repair", "repaired", "notified")
    assert loop.retest().get_json()["error"]["code"] == "repair_required"


def test_a_late_violation_before_the_repair_joins_the_closed_case(app, loop):
    case_id = loop.open_case(tested_at=_ago(hours=5))
    loop.penalty(case_id)
    loop.repair(completed_at=_ago(hours=4))
    loop.retest()
    assert loop.case(case_id)["status"] == "closed"
    opened = stored_counts(app)["cases"]
    assert loop.open_case(kind="depot_check", tested_at=_ago(hours=4, minutes=30)) == case_id
    view = loop.case(case_id)
    assert view["status"] == "closed" and len(view["violations"]) == 2
    assert stored_counts(app)["cases"] == opened  # no second loop for a fault already repaired
    assert loop.open_case(tested_at=_ago(hours=3)) != case_id  # after the repair: a new loop


def test_penalties_cover_the_violations_they_name(app, loop):
    case_id = loop.open_case(tested_at=_ago(hours=5))
    loop.open_case(kind="depot_check", tested_at=_ago(hours=4))
    other_case = loop.open_case("苏B54321")
    first, second = [v["id"] for v in loop.case(case_id)["violations"]]
    foreign = loop.case(other_case)["violations"][0]["id"]
    r = loop.penalty(case_id, violation_ids=[first])
    assert r.status_code == 201 and r.get_json()["violation_ids"] == [first]
    before = stored_counts(app)
    assert loop.penalty(case_id, violation_ids=[first]).get_json()["error"]["code"] == "penalty_already_recorded"
    for ids in ([foreign], [second, foreign], [first, second], [2**40]):
        r = loop.penalty(case_id, violation_ids=ids)
        assert r.status_code == 422 and "violation_ids" in r.get_json()["error"]["fields"], (ids, r.get_json())
    for ids in ([], [0], ["1"], "1"):
        r = loop.penalty(case_id, violation_ids=ids)
        assert r.status_code == 422 and "violation_ids" in r.get_json()["error"]["fields"], (ids, r.get_json())
    assert stored_counts(app) == before
    loop.repair()
    loop.retest()
    assert loop.case(case_id)["status"] == "repaired"  # the second violation is not covered yet
    r = loop.waiver(case_id)
    assert r.status_code == 201 and r.get_json()["violation_ids"] == [second]  # default: what is left
    view = loop.case(case_id)
    assert view["status"] == "closed" and view["closed_reason"] == "retest_passed"


def test_the_same_notice_again_answers_the_stored_one(app, loop):
    case_id = loop.open_case(tested_at=_ago(days=2))
    issued = (local_today() - timedelta(days=1)).isoformat()
    first = loop.notice(case_id, issued_on=issued, deadline_days=10)
    assert first.status_code == 201
    before = stored_counts(app)
    again = loop.notice(case_id, issued_on=issued, deadline_days=10)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert stored_counts(app) == before
    renotice = loop.notice(case_id, issued_on=issued, deadline_days=20)
    assert renotice.status_code == 201 and renotice.get_json()["id"] != first.get_json()["id"]
    assert loop.case(case_id)["deadline_on"] == renotice.get_json()["deadline_on"]


def test_a_repair_lists_at_least_one_item(app, loop):
    loop.open_case()
    before = stored_counts(app)
    for items in ([], None, [""], ["x" * 201], ["a"] * 101):
        r = loop.repair(items=items)
        assert r.status_code == 422 and "items" in r.get_json()["error"]["fields"], items
    assert stored_counts(app) == before
    assert loop.repair(items=["a"] * 100).status_code == 201


def test_a_withdrawn_uncovered_violation_leaves_the_case_closable(app, loop):
    """Coverage is read afresh: once the only uncovered violation is withdrawn, the passing retest closes."""
    case_id = loop.open_case(tested_at=_ago(hours=5))
    loop.open_case(kind="depot_check", tested_at=_ago(hours=4))
    first, second = [v["id"] for v in loop.case(case_id)["violations"]]
    assert loop.penalty(case_id, violation_ids=[first]).status_code == 201
    with app.extensions["lantian"].sessions() as s, s.begin():
        s.execute(text("UPDATE violations SET status = 'withdrawn' WHERE id = :i"), {"i": second})
    loop.repair()
    assert loop.retest().status_code == 201
    assert loop.case(case_id)["status"] == "closed"
