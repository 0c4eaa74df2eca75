"""Wire format of the vehicle and fleet registry."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from core import plates
from core.registry import FUEL_TYPES, PLATE_COLORS, USE_NATURES
from schemas import examples
from schemas.common import REGION, Day, FullMatch, StrictInteger, doc, single_line, validate_uscc

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
    code = fields.String(required=True, validate=validate_uscc,
                         metadata=doc("The transport enterprise's unified social credit code (18 characters, the last "
                                      "a check character).", examples.USCC))
    name = fields.String(required=True, validate=[validate.Length(1, 200), single_line],
                         metadata=doc("The enterprise's registered name.", "无锡顺达物流有限公司"))
    region = fields.String(required=True, validate=REGION,
                           metadata=doc("6-digit administrative region code where the enterprise is registered.",
                                        "320200"))


class FleetsIn(Schema):
    fleets = fields.List(fields.Nested(FleetIn), required=True, validate=validate.Length(1, 5000),
                         metadata=doc("1 to 5,000 fleets, each code at most once.", [examples.FLEET]))

    @validates_schema  # skipped when a fleet already failed, so every code is present
    def _unique(self, data: dict, **_: object) -> None:
        codes = [f["code"] for f in data["fleets"]]
        if len(codes) != len(set(codes)):
            raise ValidationError({"fleets": ["a fleet code appears twice"]})


class CycleIn(Schema):
    last_on = Day(required=True, metadata=doc("Day of the last periodic inspection.", "2026-03-10"))
    next_due_on = Day(required=True, metadata=doc("Day the next one is due (after `last_on`).", "2027-03-10"))

    @validates_schema
    def _order(self, data: dict, **_: object) -> None:
        if data["next_due_on"] <= data["last_on"]:
            raise ValidationError({"next_due_on": ["must be after last_on"]})


class CyclesField(fields.Field):
    """One cycle object or a list of past and current cycles; loads as a list."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[dict[str, Any]]:
        many = isinstance(value, list)
        if not many and not isinstance(value, dict):
            raise ValidationError("must be a cycle object or a list of them")
        if many and len(value) > 50:
            raise ValidationError("at most 50 cycles")
        loaded = CycleIn(many=many).load(value)
        cycles = loaded if many else [loaded]
        starts = [c["last_on"] for c in cycles]
        if len(starts) != len(set(starts)):
            raise ValidationError("a last_on appears twice")
        return cycles


class VehicleIn(Schema):
    class Meta:
        unknown = EXCLUDE

    plate = PlateField(required=True,
                       metadata=doc("The plate as registered (GA 36-2018; cleaned: upper case, half-width, separators "
                                    "removed).", "苏B12345"))
    plate_color = fields.String(required=True, validate=validate.OneOf(PLATE_COLORS),
                                metadata=doc("Plate colour: `blue`, `yellow`, `green`, `yellow_green`, `white` or "
                                             "`black`.", "yellow"))
    vin = fields.String(allow_none=True, validate=VIN,
                        metadata=doc("Vehicle identification number: 17 characters, digits and letters other than I, O "
                                     "and Q.", "LZZ1EXND5KW123456"))
    fuel_type = fields.String(required=True, validate=validate.OneOf(FUEL_TYPES),
                              metadata=doc("`gasoline`, `diesel`, `gas`, `hybrid` or `electric`.", "diesel"))
    category = fields.String(allow_none=True, validate=CATEGORY,
                             metadata=doc("Vehicle category: M1 to M3, N1 to N3, O1 to O4, L1 to L7.", "N3"))
    emission_standard = StrictInteger(allow_none=True, validate=validate.Range(0, 6),
                                      metadata=doc("China emission stage, 0 to 6.", 5))
    use_nature = fields.String(allow_none=True, validate=validate.OneOf(USE_NATURES),
                               metadata=doc("`operating` or `non_operating`.", "operating"))
    registered_on = Day(allow_none=True, metadata=doc("Day of first registration.", "2019-05-01"))
    region = fields.String(allow_none=True, validate=REGION,
                           metadata=doc("6-digit administrative region code where the vehicle is registered.",
                                        "320200"))
    fleet_code = fields.String(allow_none=True, validate=validate_uscc,
                               metadata=doc("Unified social credit code of the vehicle's fleet (register the fleet "
                                            "first).", examples.USCC))
    inspection_cycle = CyclesField(allow_none=True,
                                   metadata=doc("The current periodic inspection cycle, or a list of past and current "
                                                "cycles (`last_on`, `next_due_on` each). A cycle never replaces "
                                                "another: a new `last_on` adds one, a known one corrects its "
                                                "`next_due_on`.", examples.CYCLE))
    valid_from = Day(load_default=None,
                     metadata=doc("Local day from which this body's fleet, use nature, fuel type and region hold "
                                  "(default: today). Not after today.", "2026-11-01"))
    remote_obd = fields.Boolean(allow_none=True,
                                metadata=doc("Whether the vehicle reports through remote on-board diagnostics.", True))


class VehiclesIn(Schema):
    vehicles = fields.List(fields.Nested(VehicleIn), required=True, validate=validate.Length(1, 5000),
                           metadata=doc("1 to 5,000 vehicles, each (plate, plate_color) at most once.",
                                        [examples.VEHICLE]))

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
    plate_color = fields.String(load_default=None, validate=validate.OneOf(PLATE_COLORS),
                                metadata=doc("Plate colour, when the plate number exists in several colours.",
                                             "yellow"))
    history = fields.Boolean(load_default=False,
                             metadata=doc("Add `history`: the versions of fleet, use nature, fuel type and region "
                                          "with the day each holds from, and every inspection cycle.", True))
