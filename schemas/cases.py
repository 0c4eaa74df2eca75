"""Wire format of supervisory tests, violations and I/M cases (API.md section 6)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.json_format import Raw
from core.registry import PLATE_COLORS
from schemas.common import REGION, AwareDateTime, Day, PageArgs, StrictInteger, doc, note_text, single_line
from schemas.registry import PlateField

# The contract's enumerations (API.md section 6); enforcement.models stores these.
TEST_KINDS = ("road_check", "depot_check")
SOURCES = ("remote_sensing", "black_smoke", *TEST_KINDS)
CASE_STATUSES = ("open", "notified", "repaired", "closed")
ACTIVE, WITHDRAWN = "active", "withdrawn"
VIOLATION_STATUSES = (ACTIVE, WITHDRAWN)
EXPORT_FORMATS = ("csv", "xlsx")

PLATE_COLOR = validate.OneOf(PLATE_COLORS)
METHOD = validate.Length(1, 32)


def StrictBoolean(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - used like a field class
    """JSON true or false only: "yes" or 1 from a form is refused, not guessed."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class Evidence(fields.Dict):
    """A violation's evidence: the JSON text it kept when judged passes as it is."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value if isinstance(value, Raw) else super()._serialize(value, attr, obj, **kwargs)


class VehicleRef(Schema):
    plate = PlateField(required=True,
                       metadata=doc("The vehicle's plate as registered (cleaned: upper case, half-width, separators "
                                    "removed).", "苏B12345"))
    plate_color = fields.String(required=True, validate=PLATE_COLOR,
                                metadata=doc("Plate colour: `blue`, `yellow`, `green`, `yellow_green`, `white` or "
                                             "`black`.", "yellow"))


# --- requests ----------------------------------------------------------------------------


class SupervisoryTestIn(VehicleRef):
    tested_at = AwareDateTime(required=True,
                              metadata=doc("When the test was done, RFC 3339 with an offset.",
                                           "2026-11-20T10:30:00+08:00"))
    kind = fields.String(required=True, validate=validate.OneOf(TEST_KINDS),
                         metadata=doc("`road_check` or `depot_check`.", "road_check"))
    method = fields.String(required=True, validate=METHOD,
                           metadata=doc("Test method: `free_acceleration`, `lug_down`, `two_speed_idle`, "
                                        "`simple_transient`, ...", "free_acceleration"))
    results = fields.Dict(keys=fields.String(), load_default=dict,
                          metadata=doc("Measured values by name.", {"opacity_pct": 45.2}))
    passed = StrictBoolean(required=True,
                           metadata=doc("Whether the vehicle passed; a failed test creates a violation.", False))
    location = fields.String(load_default=None, validate=[validate.Length(max=200), single_line],
                             metadata=doc("Where the test was done (free text).", "G312 无锡东收费站"))
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("6-digit region code where the test was done (default: the officer's region, "
                                        "then the vehicle's).", "320205"))


class NoticeIn(Schema):
    deadline_days = StrictInteger(load_default=None, validate=validate.Range(1, 3650),
                                  metadata=doc("Days the owner has to repair and be retested (default: the policy's "
                                               "notice deadline).", 15))
    issued_on = Day(load_default=None,
                    metadata=doc("Day the notice was served (default today, never in the future: notices served on "
                                 "paper are entered later).", "2026-11-20"))


class PenaltyIn(Schema):
    """A penalty decision, or `{"waived": true, "reason"}`."""

    waived = StrictBoolean(load_default=False,
                           metadata=doc("`true` to record a waiver (with `reason`) instead of a penalty.", False))
    reason = fields.String(load_default=None, validate=[validate.Length(1, 2000), note_text],
                           metadata=doc("Why the penalty is waived (waivers only).", "首次轻微违法，当场改正"))
    decision_no = fields.String(load_default=None, validate=[validate.Length(1, 64), single_line],
                                metadata=doc("Number of the administrative penalty decision (penalties only).",
                                             "锡公交罚决字〔2026〕00123号"))
    # The policy's `penalty_max_yuan` is checked by the route; this bound is what a column holds.
    amount_yuan = StrictInteger(load_default=None, validate=validate.Range(0, 2**31 - 1),
                                metadata=doc("The fine, in whole yuan.", 2000))
    legal_basis = fields.String(load_default=None, validate=[validate.Length(1, 2000), note_text],
                                metadata=doc("The legal basis of the decision.",
                                             "《中华人民共和国大气污染防治法》第一百一十四条"))
    issued_at = AwareDateTime(load_default=None,
                              metadata=doc("When the decision was issued, RFC 3339 with an offset.",
                                           "2026-11-21T09:00:00+08:00"))
    # The violations covered (default: the case's active violations not yet covered).
    violation_ids = fields.List(StrictInteger(validate=validate.Range(1, 2**63 - 1)), load_default=None,
                                validate=validate.Length(1, 500),
                                metadata=doc("The violations this penalty or waiver covers (default: every active "
                                             "violation of the case not yet covered).", [101, 102]))

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
    completed_at = AwareDateTime(load_default=None,
                                 metadata=doc("When the repair was completed, RFC 3339 with an offset (default now).",
                                              "2026-11-25T16:00:00+08:00"))
    items = fields.List(fields.String(validate=[validate.Length(1, 200), single_line]), required=True,
                        validate=validate.Length(1, 100, error="a repair lists at least one item, at most 100"),
                        metadata=doc("What was done: up to 100 items of up to 200 characters.",
                                     ["更换DPF", "清洗喷油器"]))
    notes = fields.String(load_default=None, validate=[validate.Length(max=2000), note_text],
                          metadata=doc("Free text, up to 2,000 characters.", "更换后自检烟度 0.4 m⁻¹"))


class RetestIn(VehicleRef):
    tested_at = AwareDateTime(load_default=None,
                              metadata=doc("When the retest was done, RFC 3339 with an offset (default now).",
                                           "2026-11-26T10:00:00+08:00"))
    method = fields.String(required=True, validate=METHOD,
                           metadata=doc("Test method: `free_acceleration`, `lug_down`, `two_speed_idle`, "
                                        "`simple_transient`, ...", "lug_down"))
    results = fields.Dict(keys=fields.String(), load_default=dict,
                          metadata=doc("Measured values by name.", {"opacity_pct": 12.0}))
    passed = StrictBoolean(required=True, metadata=doc("Whether the vehicle passed.", True))


class ViolationQuery(PageArgs):
    plate = PlateField(load_default=None, metadata=doc("Only this vehicle's violations.", "苏B12345"))
    plate_color = fields.String(load_default=None, validate=PLATE_COLOR,
                                metadata=doc("Plate colour: `blue`, `yellow`, `green`, `yellow_green`, `white` or "
                                             "`black`.", "yellow"))
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only violations seen in this region or its children (6-digit code).",
                                        "320200"))
    source = fields.String(load_default=None, validate=validate.OneOf(SOURCES),
                           metadata=doc("`remote_sensing`, `black_smoke`, `road_check` or `depot_check`.",
                                        "remote_sensing"))
    from_ = Day(load_default=None, data_key="from", metadata=doc("Detected on or after this local day.", "2026-11-01"))
    to = Day(load_default=None, metadata=doc("Detected on or before this local day.", "2026-11-30"))
    status = fields.String(load_default=ACTIVE, validate=validate.OneOf((*VIOLATION_STATUSES, "all")),
                           metadata=doc("`active` (default), `withdrawn` or `all`.", "active"))
    format = fields.String(load_default=None, validate=validate.OneOf(EXPORT_FORMATS),
                           metadata=doc("`csv` or `xlsx`: every matching violation as a spreadsheet (Chinese headers, "
                                        "local times; `limit` and `cursor` are ignored).", "csv"))

    @validates_schema
    def _order(self, data: dict[str, Any], **_: object) -> None:
        if data["from_"] and data["to"] and data["to"] < data["from_"]:
            raise ValidationError({"to": ["must not be before from"]})


class CaseQuery(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES),
                           metadata=doc("`open`, `notified`, `repaired` or `closed`.", "notified"))
    overdue = fields.Boolean(load_default=None, metadata=doc("`true`: only open cases past their deadline.", True))
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))
    format = fields.String(load_default=None, validate=validate.OneOf(EXPORT_FORMATS),
                           metadata=doc("`csv` or `xlsx`: every matching case as a spreadsheet (Chinese headers, "
                                        "local times; `limit` and `cursor` are ignored).", "xlsx"))


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
    region = fields.String(allow_none=True, metadata=doc("Where it was detected: the station's region, a test's.",
                                                         "320281"))
    vehicle_region = fields.String(allow_none=True, metadata=doc("The vehicle's registration region at detection.",
                                                                 "320205"))
    details = fields.Dict()
    case_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
    status = fields.String()
    withdrawn_reason = fields.String(allow_none=True)
    withdrawn_by_event = fields.Integer(allow_none=True)
    use_nature = fields.String(allow_none=True, metadata=doc(
        "The vehicle's use nature when the violation was detected (`operating`, `non_operating`; null: not "
        "known, e.g. an outside vehicle).", "operating"))
    fleet_code = fields.String(allow_none=True, metadata=doc(
        "The fleet the vehicle belonged to when the violation was detected (the ten percent rule counts it "
        "there, whatever fleet the vehicle is in now); null: none.", "91320200MA1XXXXXXW"))
    # remote_sensing: {"events": [...]} (the judged run); black_smoke: {"snapshot", "review"};
    # road_check / depot_check: {"test"} (enforcement.evidence)
    evidence = Evidence()


class CorrectionIn(VehicleRef):
    """The vehicle a person read, and why the violation moves to it."""

    reason = fields.String(required=True, validate=validate.Length(1, 2000),
                           metadata=doc("Why the violation moves to this vehicle (the officer's reading).",
                                        "图像复核：号牌为苏B12346，原识别有误"))


class CorrectionOut(Schema):
    id = fields.Integer()
    violation_id = fields.Integer()
    from_vehicle = fields.Nested(CaseVehicleOut, data_key="from")
    to_vehicle = fields.Nested(CaseVehicleOut, data_key="to")
    reason = fields.String()
    by = fields.String()
    at = AwareDateTime()
    violation = fields.Nested(ViolationOut, metadata={"description": "the violation as it stands after the move"})


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


class ReviewItemOut(Schema):
    """Something a person must look at again, such as a penalty on a withdrawn violation."""

    reason = fields.String()
    violation_id = fields.Integer()


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
    closed_reason = fields.String(allow_none=True)
    retest_passed = fields.Boolean()
    review_required = fields.List(fields.Nested(ReviewItemOut))


class ServedRepairOut(RepairOut):
    class Meta:
        exclude = ("reported_by",)


class ServedRetestOut(RetestOut):
    class Meta:
        exclude = ("reported_by",)


class ServedCaseOut(Schema):
    """The case of a vehicle an M or I station is serving: what failed and what was done,
    no personal data (no VIN, owner, or names of officers and staff)."""

    id = fields.Integer()
    vehicle = fields.Nested(CaseVehicleOut)
    status = fields.String()
    opened_at = AwareDateTime()
    deadline_on = fields.Date(allow_none=True)
    overdue = fields.Boolean()
    retest_passed = fields.Boolean()
    violations = fields.List(fields.Nested(ViolationOut))
    repairs = fields.List(fields.Nested(ServedRepairOut))
    retests = fields.List(fields.Nested(ServedRetestOut))


class ServedCaseQuery(VehicleRef):
    pass


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
