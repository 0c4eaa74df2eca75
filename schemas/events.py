"""Wire format of remote-sensing events.

Physically impossible values (negative speed, humidity over 100%) are refused with 422;
possible but unusable ones (speed 150 km/h, wind 8 m/s) are stored and judged invalid.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.registry import FUEL_TYPES, PLATE_COLORS
from schemas import examples
from schemas.common import PRINTABLE_ID, AwareDateTime, StrictFloat, StrictInteger, doc


class PlateIn(Schema):
    number = fields.String(required=True, validate=validate.Length(1, 32),
                           metadata=doc("The plate characters as read (the server cleans them: upper case, half-width, "
                                        "separators removed).", "苏B12345"))
    color = fields.String(required=True, validate=validate.OneOf(PLATE_COLORS),
                          metadata=doc("Plate colour: `blue`, `yellow`, `green`, `yellow_green`, `white` or `black`.",
                                       "yellow"))
    confidence = StrictFloat(required=True, validate=validate.Range(0, 1),
                             metadata=doc("The reader's confidence, 0 to 1; below the policy minimum (default 0.80) "
                                          "the event is stored as `plate_unreadable`.", 0.97))


class MeasurementsIn(Schema):
    co_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100), metadata=doc("CO, volume %.", 0.12))
    co2_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100),
                          metadata=doc("CO2, volume % (too weak a signal makes the event invalid).", 12.1))
    hc_ppm = StrictFloat(allow_none=True, validate=validate.Range(0, 1_000_000), metadata=doc("HC, ppm.", 45))
    no_ppm = StrictFloat(allow_none=True, validate=validate.Range(0, 1_000_000), metadata=doc("NO, ppm.", 820))
    opacity_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100),
                              metadata=doc("Opacity, % (diesel).", 12.5))
    ringelmann = StrictInteger(allow_none=True, validate=validate.Range(0, 5),
                               metadata=doc("Ringelmann blackness level, 0 to 5 (diesel).", 0))

    @validates_schema
    def _some_value(self, data: dict, **_: object) -> None:
        if all(v is None for v in data.values()):
            raise ValidationError("at least one measured value is required")


class ConditionsIn(Schema):
    wind_speed_ms = StrictFloat(allow_none=True, validate=validate.Range(0, 80), metadata=doc("Wind speed, m/s.", 2.1))
    temperature_c = StrictFloat(allow_none=True, validate=validate.Range(-60, 70),
                                metadata=doc("Air temperature, °C.", 12.0))
    humidity_pct = StrictFloat(allow_none=True, validate=validate.Range(0, 100),
                               metadata=doc("Relative humidity, %.", 65))
    pressure_kpa = StrictFloat(allow_none=True, validate=validate.Range(30, 120),
                               metadata=doc("Air pressure, kPa.", 101.2))


class StationRecordIn(Schema):
    """What every station record carries: its idempotency key, lane and plate read."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=PRINTABLE_ID,
                             metadata=doc("The station's own id for this record, unique per station: the idempotency "
                                          "key (1 to 100 printable ASCII characters).", "RS001-20261122-000123"))
    lane = StrictInteger(allow_none=True, validate=validate.Range(1, 20),
                         metadata=doc("Lane number, 1 to 20 (null when the station has one lane).", 1))
    plate = fields.Nested(PlateIn, required=True, metadata=doc("The plate as the station read it.", examples.PLATE))


class EventIn(StationRecordIn):
    measured_at = AwareDateTime(required=True,
                                metadata=doc("When the vehicle passed, RFC 3339 with an offset; not more than the "
                                             "tolerance (default 300 s) in the future.", "2026-11-22T08:15:30+08:00"))
    speed_kmh = StrictFloat(required=True, validate=validate.Range(0, 400),
                            metadata=doc("Speed, km/h; outside the validity window (default 5 to 120) the event is "
                                         "stored but invalid.", 42.5))
    acceleration_ms2 = StrictFloat(required=True, validate=validate.Range(-30, 30),
                                   metadata=doc("Acceleration, m/s²; valid between -2.0 and 2.0 by default.", 0.3))
    vsp_kw_t = StrictFloat(allow_none=True, validate=validate.Range(-200, 400),
                           metadata=doc("Vehicle specific power, kW/t; when absent the server computes it from speed "
                                        "and acceleration (flat road).", 8.2))
    measurements = fields.Nested(MeasurementsIn, required=True,
                                 metadata=doc("What the instrument measured: at least one value; unmeasured values "
                                              "null or absent.", examples.MEASUREMENTS))
    conditions = fields.Nested(ConditionsIn, load_default=dict,
                               metadata=doc("Weather at the station, for the validity checks (wind, temperature, "
                                            "humidity).", examples.CONDITIONS))
    fuel_type_observed = fields.String(allow_none=True, validate=validate.OneOf(FUEL_TYPES),
                                       metadata=doc("Fuel the station saw (`gasoline`, `diesel`, `gas`, `hybrid`, "
                                                    "`electric`); used when the plate matches no registered vehicle.",
                                                    "diesel"))


class BatchIn(Schema):
    events = fields.List(fields.Raw(), required=True, validate=validate.Length(1, 500),
                         metadata=doc("1 to 500 events, each as the body of `POST /api/v1/remote-sensing/events`; each "
                                      "is answered on its own.", [examples.EVENT]))


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
    # What was measured, as the station sent it (API.md section 9).
    lane = fields.Integer(allow_none=True)
    speed_kmh = fields.Float(allow_none=True)
    acceleration_ms2 = fields.Float(allow_none=True)
    vsp_kw_t = fields.Float(allow_none=True)
    vsp_computed = fields.Boolean(
        metadata={"description": "vsp_kw_t was absent and computed from speed and acceleration"})
    measurements = fields.Dict()
    conditions = fields.Dict()
    # Where the station stands.
    location = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
