"""Wire format of remote-sensing events.

Physically impossible values (negative speed, humidity over 100%) are refused with 422;
possible but unusable ones (speed 150 km/h, wind 8 m/s) are stored and judged invalid.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.registry import FUEL_TYPES, PLATE_COLORS
from schemas.common import PRINTABLE_ID, AwareDateTime, StrictFloat, StrictInteger


class PlateIn(Schema):
    number = fields.String(required=True, validate=validate.Length(1, 32))
    color = fields.String(required=True, validate=validate.OneOf(PLATE_COLORS))
    confidence = StrictFloat(required=True, validate=validate.Range(0, 1))


class MeasurementsIn(Schema):
    co_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100))
    co2_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100))
    hc_ppm = StrictFloat(allow_none=True, validate=validate.Range(0, 1_000_000))
    no_ppm = StrictFloat(allow_none=True, validate=validate.Range(0, 1_000_000))
    opacity_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100))
    ringelmann = StrictInteger(allow_none=True, validate=validate.Range(0, 5))

    @validates_schema
    def _some_value(self, data: dict, **_: object) -> None:
        if all(v is None for v in data.values()):
            raise ValidationError("at least one measured value is required")


class ConditionsIn(Schema):
    wind_speed_ms = StrictFloat(allow_none=True, validate=validate.Range(0, 80))
    temperature_c = StrictFloat(allow_none=True, validate=validate.Range(-60, 70))
    humidity_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100))
    pressure_kpa = StrictFloat(allow_none=True, validate=validate.Range(30, 120))


class StationRecordIn(Schema):
    """What every station record carries: its idempotency key, lane and plate read."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=PRINTABLE_ID)
    lane = StrictInteger(allow_none=True, validate=validate.Range(1, 20))
    plate = fields.Nested(PlateIn, required=True)


class EventIn(StationRecordIn):
    measured_at = AwareDateTime(required=True)
    speed_kmh = StrictFloat(required=True, validate=validate.Range(0, 400))
    acceleration_ms2 = StrictFloat(required=True, validate=validate.Range(-30, 30))
    vsp_kw_t = StrictFloat(allow_none=True, validate=validate.Range(-200, 400))
    measurements = fields.Nested(MeasurementsIn, required=True)
    conditions = fields.Nested(ConditionsIn, load_default=dict)
    fuel_type_observed = fields.String(allow_none=True, validate=validate.OneOf(FUEL_TYPES))


class BatchIn(Schema):
    events = fields.List(fields.Raw(), required=True, validate=validate.Length(1, 500))


class Accepted(Schema):
    id = fields.Integer()
    status = fields.String()


class BatchResult(Schema):
    event_id = fields.Raw(allow_none=True)
    id = fields.Integer(allow_none=True)
    status = fields.String()
    errors = fields.Dict(allow_none=True)


class BatchOut(Schema):
    results = fields.List(fields.Nested(BatchResult))


class Validity(Schema):
    valid = fields.Boolean(allow_none=True)
    reasons = fields.List(fields.String())


class VehicleRef(Schema):
    plate = fields.String(allow_none=True)
    plate_color = fields.String()
    match = fields.String(allow_none=True)


class RevisionOut(Schema):
    """A re-judgement of the event (DOMAIN.md section 7); the first verdict stays in EventOut's fields."""

    at = AwareDateTime()
    cause_event = fields.Integer(allow_none=True)  # the late event that changed the rule's outcome
    cause_reset = fields.Integer(allow_none=True)  # or the run reset (a verified repair)
    judged = fields.List(fields.String())
    warnings = fields.List(fields.String())
    violation_ids = fields.List(fields.Integer())
    withdrawn = fields.List(fields.Integer())
    policy = fields.Dict()


class EventOut(Schema):
    id = fields.Integer()
    event_id = fields.String()
    station = fields.String()
    status = fields.String()
    measured_at = AwareDateTime()
    received_at = AwareDateTime()
    validity = fields.Nested(Validity)
    verdict = fields.String(allow_none=True)
    exceeded = fields.List(fields.String())
    warnings = fields.List(fields.String())
    judged = fields.List(fields.String())
    vehicle = fields.Nested(VehicleRef)
    fuel_type = fields.String(allow_none=True)
    limits = fields.Dict(allow_none=True)
    policy = fields.Dict(allow_none=True)
    violation_id = fields.Integer(allow_none=True)
    revisions = fields.List(fields.Nested(RevisionOut))
