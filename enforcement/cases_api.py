"""I/M cases API: reading cases, and the steps of the loop (API.md section 6)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from flask import Response, jsonify, stream_with_context
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from core.identity import Role
from core.pagination import page, walk
from core.web import current_person, db, read_db, require_person, runtime
from enforcement import cases, exports, notice_docs, notice_pdf
from enforcement.cases import Actor, Step
from enforcement.models import Case
from schemas.cases import (
    CaseOut,
    CasePage,
    CaseQuery,
    NoticeIn,
    NoticeOut,
    PenaltyIn,
    PenaltyOut,
    RepairIn,
    RepairOut,
    RetestIn,
    RetestOut,
    ServedCaseOut,
    ServedCaseQuery,
)
from schemas.common import not_in_future

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="I/M cases")

READERS = (Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)


def today() -> date:
    return cases.local_today(runtime().tz)


def no_future(body: dict[str, Any], *names: str) -> None:
    """A step reported with a time ahead of the server clock (beyond the tolerance) is a 422."""
    tolerance = runtime().settings.future_tolerance_s
    for name in names:
        if body.get(name) is not None:
            not_in_future(body[name], tolerance, name)


def export(fmt: str, name: str, rows: Iterable[list[exports.Cell]], session: Session) -> Response:
    """A spreadsheet streamed to the client, reading through `session` as it goes.

    Flask tears the request down once before the body streams (closing the request's session,
    which the stream's first read then reopens) and again after it, when `g` no longer holds
    the session: so the stream closes it itself, or its transaction would stay open until the
    session is garbage collected (holding locks that block, for one, a TRUNCATE)."""
    def body() -> Iterator[bytes]:
        try:
            yield from exports.chunks(fmt, rows, name)
        finally:
            session.close()

    response = Response(stream_with_context(body()), mimetype=exports.MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def present_one(case: Case) -> dict[str, Any]:
    return cases.present_cases(db(), [case], today())[0]


@blp.get("/cases")
@require_person(*READERS)
@blp.arguments(CaseQuery, location="query")
@blp.response(200, CasePage)
def list_cases(query: dict[str, Any]) -> Response:
    """List I/M cases, newest first."""
    session, now = read_db(), today()
    stmt = cases.cases_query(scope=current_person().scope, today=now, status=query["status"],
                             overdue=query["overdue"], region=query["region"])
    if query["format"]:
        def context(rows: Any) -> dict[str, Any]:
            return {"plates": cases.vehicles_by_id(session, (c.vehicle_id for c in rows)), "tz": runtime().tz,
                    "overdue": lambda c: cases.is_overdue(c, now)}
        pages = walk(session, stmt, Case.opened_at, Case.id, size=exports.PAGE_ROWS)
        return export(query["format"], "cases", exports.table(pages, exports.CASE_COLUMNS, context), session)
    rows, cursor = page(session, stmt, Case.opened_at, Case.id, limit=query["limit"], cursor=query["cursor"])
    # The views already are CasePage's dump (see enforcement.cases, presenting), so the page
    # skips it: a Response passes flask-smorest untouched, and CasePage still documents it.
    return jsonify({"items": cases.present_cases(session, rows, now), "next_cursor": cursor})


@blp.get("/cases/lookup")
@require_person(Role.REPAIR_STATION, Role.INSPECTION_STATION)
@blp.arguments(ServedCaseQuery, location="query")
@blp.response(200, ServedCaseOut)
def lookup_case(query: dict[str, Any]) -> dict[str, Any]:
    """M and I stations: the open case of the vehicle in front of them (ServedCaseOut drops the rest)."""
    return present_one(cases.served_case(db(), query["plate"], query["plate_color"], current_person().scope))


@blp.get("/cases/<int:case_id>")
@require_person(*READERS)
@blp.response(200, CaseOut)
def get_case(case_id: int) -> dict[str, Any]:
    """Read one I/M case with its violations, notices, penalties, repairs and retests."""
    return present_one(cases.visible_case(db(), case_id, current_person().scope))


@blp.get("/cases/<int:case_id>/notice.pdf")
@require_person(*READERS)
@blp.doc(responses={"200": {"description": "the latest notice as a PDF (zh-CN, local times)",
                            "content": {"application/pdf": {}}}})
def get_notice_pdf(case_id: int) -> Response:
    """The mandatory inspection and repair notice (强制检验维修通知书) of the case's latest notice, as a PDF."""
    session, rt = db(), runtime()
    case = cases.visible_case(session, case_id, current_person().scope)
    content = notice_docs.notice_content(session, case, tz=rt.tz, policy=rt.settings.policy)
    response = Response(notice_pdf.render(content, rt.settings.notice_font), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="notice-{content.number}.pdf"'
    return response


@blp.post("/cases/<int:case_id>/notices")
@require_person(*cases.STEP_ROLES[Step.NOTICE])
@blp.arguments(NoticeIn)
@blp.response(201, NoticeOut)
@blp.alt_response(200, schema=NoticeOut, description="the same notice again: the stored one")
def post_notice(body: dict[str, Any], case_id: int) -> Any:
    """Issue the mandatory inspection and repair notice on a case.

    The deadline is `issued_on` plus `deadline_days`; the same notice sent again answers 200 with
    the stored one.
    """
    session = db()
    notice, new = cases.issue_notice(session, case_id, actor=Actor.of(current_person()), today=today(),
                                     policy=runtime().settings.policy, **body)
    session.commit()
    return notice, 201 if new else 200


@blp.post("/cases/<int:case_id>/penalties")
@require_person(*cases.STEP_ROLES[Step.PENALTY])
@blp.arguments(PenaltyIn)
@blp.response(201, PenaltyOut)
def post_penalty(body: dict[str, Any], case_id: int) -> Any:
    """Record a penalty decision, or a waiver, on an open case."""
    no_future(body, "issued_at")
    session, actor = db(), Actor.of(current_person())
    if body["waived"]:
        record = cases.record_waiver(session, case_id, actor=actor, reason=body["reason"],
                                     issued_at=body["issued_at"], violation_ids=body["violation_ids"])
    else:
        policy = runtime().settings.policy
        if body["amount_yuan"] is not None and body["amount_yuan"] > policy.penalty_max_yuan:
            raise ValidationError({"amount_yuan": [f"must be at most {policy.penalty_max_yuan} yuan"]})
        record = cases.record_penalty(
            session, case_id, actor=actor, policy=policy, decision_no=body["decision_no"],
            amount_yuan=body["amount_yuan"], legal_basis=body["legal_basis"], issued_at=body["issued_at"],
            violation_ids=body["violation_ids"],
        )
    session.commit()
    return record


@blp.post("/repairs")
@require_person(*cases.STEP_ROLES[Step.REPAIR])
@blp.arguments(RepairIn)
@blp.response(201, RepairOut)
def post_repair(body: dict[str, Any]) -> Any:
    """Record a repair done at an M station on the vehicle's open case."""
    no_future(body, "completed_at")
    session = db()
    repair = cases.record_repair(session, actor=Actor.of(current_person()), **body)
    session.commit()
    return repair


@blp.post("/retests")
@require_person(*cases.STEP_ROLES[Step.RETEST_PASSED])
@blp.arguments(RetestIn)
@blp.response(201, RetestOut)
def post_retest(body: dict[str, Any]) -> Any:
    """Record a retest done at an I station on the vehicle's open case.

    A passed retest after the repair, with the penalties recorded, closes the case; a failed one
    sends it back to `notified`.
    """
    no_future(body, "tested_at")
    session = db()
    retest = cases.record_retest(session, actor=Actor.of(current_person()), **body)
    session.commit()
    return retest
