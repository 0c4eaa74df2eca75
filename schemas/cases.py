"""Wire format of supervisory tests, violations and I/M cases (API.md section 6)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.registry import PLATE_COLORS
from schemas.common import REGION, AwareDateTime, Day, PageArgs, StrictInteger, note_text, single_line
from schemas.registry import PlateField

# The contract's enumerations (API.md section 6); enforcement.models stores these.
TEST_KINDS = ("road_check", "depot_check")
SOURCES = ("remote_sensing", "black_smoke", *TEST_KINDS)
CASE_STATUSES = ("open", "notified", "repaired", "closed")
ACTIVE, WITHDRAWN = "active", "withdrawn"
VIOLATION_STATUSES = (ACTIVE, WITHDRAWN)

PLATE_COLOR = validate.OneOf(PLATE_COLORS)
METHOD = validate.Length(1, 32)


def StrictBoolean(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - used like a field class
    """JSON true or false only: "yes" or 1 from a form is refused, not guessed."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class VehicleRef(Schema):
    plate = PlateField(required=True)
    plate_color = fields.String(required=True, validate=PLATE_COLOR)


# --- requests ----------------------------------------------------------------------------


class SupervisoryTestIn(VehicleRef):
    tested_at = AwareDateTime(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(TEST_KINDS))
    method = fields.String(required=True, validate=METHOD)
    results = fields.Dict(keys=fields.String(), load_default=dict)
    passed = StrictBoolean(required=True)
    location = fields.String(load_default=None, validate=[validate.Length(max=200), single_line])
    region = fields.String(load_default=None, validate=REGION)


class NoticeIn(Schema):
    deadline_days = StrictInteger(load_default=None, validate=validate.Range(1, 3650))
    issued_on = Day(load_default=None)


class PenaltyIn(Schema):
    """A penalty decision, or `{"waived": true, "reason"}`."""

    waived = StrictBoolean(load_default=False)
    reason = fields.String(load_default=None, validate=[validate.Length(1, 2000), note_text])
    decision_no = fields.String(load_default=None, validate=[validate.Length(1, 64), single_line])
    # The policy's `penalty_max_yuan` is checked by the route; this bound is what a column holds.
    amount_yuan = StrictInteger(load_default=None, validate=validate.Range(0, 2**31 - 1))
    legal_basis = fields.String(load_default=None, validate=[validate.Length(1, 2000), note_text])
    issued_at = AwareDateTime(load_default=None)

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **_: object) -> None:
        if data["waived"]:
            if not data["reason"]:
                raise ValidationError({"reason": ["a waiver needs a reason"]})
            extra = [k for k in ("decision_no", "amount_yuan", "legal_basis") if data[k] is not None]
            if extra:
                raise ValidationError({k: ["not allowed on a waiver"] for k in extra})
        elif not data["decision_no"]:
            raise ValidationError({"decision_no": ["a penalty needs its decision number"]})


class RepairIn(VehicleRef):
    completed_at = AwareDateTime(load_default=None)
    items = fields.List(fields.String(validate=[validate.Length(1, 200), single_line]), load_default=list,
                        validate=validate.Length(max=100))
    notes = fields.String(load_default=None, validate=[validate.Length(max=2000), note_text])


class RetestIn(VehicleRef):
    tested_at = AwareDateTime(load_default=None)
    method = fields.String(required=True, validate=METHOD)
    results = fields.Dict(keys=fields.String(), load_default=dict)
    passed = StrictBoolean(required=True)


class ViolationQuery(PageArgs):
    plate = PlateField(load_default=None)
    plate_color = fields.String(load_default=None, validate=PLATE_COLOR)
    region = fields.String(load_default=None, validate=REGION)
    source = fields.String(load_default=None, validate=validate.OneOf(SOURCES))
    from_ = Day(load_default=None, data_key="from")
    to = Day(load_default=None)
    status = fields.String(load_default=ACTIVE, validate=validate.OneOf((*VIOLATION_STATUSES, "all")))

    @validates_schema
    def _order(self, data: dict[str, Any], **_: object) -> None:
        if data["from_"] and data["to"] and data["to"] < data["from_"]:
            raise ValidationError({"to": ["must not be before from"]})


class CaseQuery(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    overdue = fields.Boolean(load_default=None)
    region = fields.String(load_default=None, validate=REGION)


# --- answers -----------------------------------------------------------------------------


class CaseVehicleOut(Schema):
    plate = fields.String()
    plate_color = fields.String()


class ViolationOut(Schema):
    id = fields.Integer()
    vehicle = fields.Nested(CaseVehicleOut)
    source = fields.String()
    source_ref = fields.String()
    detected_at = AwareDateTime()
    detected_on = fields.Date()
    region = fields.String(allow_none=True)
    details = fields.Dict()
    case_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
    status = fields.String()
    withdrawn_reason = fields.String(allow_none=True)
    withdrawn_by_event = fields.Integer(allow_none=True)


class ViolationPage(Schema):
    items = fields.List(fields.Nested(ViolationOut))
    next_cursor = fields.String(allow_none=True)


class NoticeOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    issued_on = fields.Date()
    deadline_days = fields.Integer()
    deadline_on = fields.Date()
    issued_by = fields.String()
    created_at = AwareDateTime()


class PenaltyOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    waived = fields.Boolean()
    decision_no = fields.String(allow_none=True)
    amount_yuan = fields.Integer(allow_none=True)
    legal_basis = fields.String(allow_none=True)
    code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    issued_at = AwareDateTime()
    issued_by = fields.String()
    created_at = AwareDateTime()
    violation_ids = fields.List(fields.Integer(), allow_none=True)


class RepairOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    org_id = fields.Integer(allow_none=True)
    completed_at = AwareDateTime()
    items = fields.List(fields.String())
    notes = fields.String(allow_none=True)
    reported_by = fields.String()
    created_at = AwareDateTime()


class RetestOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    org_id = fields.Integer(allow_none=True)
    tested_at = AwareDateTime()
    method = fields.String()
    results = fields.Dict()
    passed = fields.Boolean()
    reported_by = fields.String()
    created_at = AwareDateTime()


class CaseOut(Schema):
    id = fields.Integer()
    vehicle = fields.Nested(CaseVehicleOut)
    region = fields.String(allow_none=True)
    status = fields.String()
    opened_at = AwareDateTime()
    deadline_on = fields.Date(allow_none=True)
    overdue = fields.Boolean()
    penalty_settled = fields.Boolean()
    violations = fields.List(fields.Nested(ViolationOut))
    notices = fields.List(fields.Nested(NoticeOut))
    penalties = fields.List(fields.Nested(PenaltyOut))
    repairs = fields.List(fields.Nested(RepairOut))
    retests = fields.List(fields.Nested(RetestOut))
    closed_at = AwareDateTime(allow_none=True)


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True)


class SupervisoryTestOut(Schema):
    id = fields.Integer()
    vehicle = fields.Nested(CaseVehicleOut)
    kind = fields.String()
    method = fields.String()
    tested_at = AwareDateTime()
    results = fields.Dict()
    passed = fields.Boolean()
    location = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    recorded_by = fields.String()
    violation_id = fields.Integer(allow_none=True)
    case_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
