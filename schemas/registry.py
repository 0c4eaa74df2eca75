"""Wire format of the vehicle and fleet registry."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from core import plates
from core.registry import FUEL_TYPES, PLATE_COLORS, USE_NATURES
from schemas.common import REGION, Day, FullMatch, StrictInteger, single_line, validate_uscc

VIN = FullMatch(r"[A-HJ-NPR-Z0-9]{17}", error="must be 17 characters, digits and letters other than I, O, Q")
CATEGORY = FullMatch(r"M1|M2|M3|N1|N2|N3|O[1-4]|L[1-7]", error="must be a vehicle category such as M1 or N3")


class PlateField(fields.String):
    """A plate as written on the registration: cleaned, then required to be well-formed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        cleaned = plates.clean_plate(super()._deserialize(value, attr, data, **kwargs))
        if not plates.is_well_formed(cleaned):
            raise ValidationError("is not a well-formed plate (GA 36-2018)")
        return cleaned


class FleetIn(Schema):
    code = fields.String(required=True, validate=validate_uscc)
    name = fields.String(required=True, validate=[validate.Length(1, 200), single_line])
    region = fields.String(required=True, validate=REGION)


class FleetsIn(Schema):
    fleets = fields.List(fields.Nested(FleetIn), required=True, validate=validate.Length(1, 5000))

    @validates_schema  # skipped when a fleet already failed, so every code is present
    def _unique(self, data: dict, **_: object) -> None:
        codes = [f["code"] for f in data["fleets"]]
        if len(codes) != len(set(codes)):
            raise ValidationError({"fleets": ["a fleet code appears twice"]})


class CycleIn(Schema):
    last_on = Day(required=True)
    next_due_on = Day(required=True)

    @validates_schema
    def _order(self, data: dict, **_: object) -> None:
        if data["next_due_on"] <= data["last_on"]:
            raise ValidationError({"next_due_on": ["must be after last_on"]})


class VehicleIn(Schema):
    class Meta:
        unknown = EXCLUDE

    plate = PlateField(required=True)
    plate_color = fields.String(required=True, validate=validate.OneOf(PLATE_COLORS))
    vin = fields.String(allow_none=True, validate=VIN)
    fuel_type = fields.String(required=True, validate=validate.OneOf(FUEL_TYPES))
    category = fields.String(allow_none=True, validate=CATEGORY)
    emission_standard = StrictInteger(allow_none=True, validate=validate.Range(0, 6))
    use_nature = fields.String(allow_none=True, validate=validate.OneOf(USE_NATURES))
    registered_on = Day(allow_none=True)
    region = fields.String(allow_none=True, validate=REGION)
    fleet_code = fields.String(allow_none=True, validate=validate_uscc)
    inspection_cycle = fields.Nested(CycleIn, allow_none=True)
    remote_obd = fields.Boolean(allow_none=True)


class VehiclesIn(Schema):
    vehicles = fields.List(fields.Nested(VehicleIn), required=True, validate=validate.Length(1, 5000))

    @post_load
    def _unique(self, data: dict, **_: object) -> dict:
        keys = [(v["plate"], v["plate_color"]) for v in data["vehicles"]]
        if len(keys) != len(set(keys)):
            raise ValidationError({"vehicles": ["a (plate, plate_color) appears twice"]})
        return data


class UpsertOut(Schema):
    created = fields.Integer()
    updated = fields.Integer()


class CycleOut(Schema):
    last_on = fields.Date(allow_none=True)
    next_due_on = fields.Date(allow_none=True)


class VehicleOut(Schema):
    plate = fields.String()
    plate_color = fields.String()
    vin = fields.String(allow_none=True)
    fuel_type = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    emission_standard = fields.Integer(allow_none=True)
    use_nature = fields.String(allow_none=True)
    registered_on = fields.Date(allow_none=True)
    region = fields.String(allow_none=True)
    fleet_code = fields.String(allow_none=True)
    inspection_cycle = fields.Nested(CycleOut, allow_none=True)
    remote_obd = fields.Boolean(allow_none=True)
    registered = fields.Boolean()


class VehicleQuery(Schema):
    plate_color = fields.String(load_default=None, validate=validate.OneOf(PLATE_COLORS))
