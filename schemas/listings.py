"""Wire format of blacklists, key supervision and their public disclosure."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import REGION, AwareDateTime, PageArgs, not_blank, note_text


class BlacklistQuery(PageArgs):
    subject = fields.String(load_default=None, validate=validate.OneOf(("vehicle", "fleet")))
    active = fields.Boolean(load_default=None)
    region = fields.String(load_default=None, validate=REGION)


class PublicQuery(PageArgs):
    subject = fields.String(load_default=None, validate=validate.OneOf(("vehicle", "fleet")))
    region = fields.String(load_default=None, validate=REGION)


class KeySupervisionQuery(PageArgs):
    region = fields.String(load_default=None, validate=REGION)
    reason = fields.String(load_default=None,
                           validate=validate.OneOf(("overdue_case", "no_remote_obd", "three_strikes")))


class DelistIn(Schema):
    reason = fields.String(required=True, validate=[validate.Length(max=2000), not_blank, note_text])


class Subject(Schema):
    type = fields.String()
    plate = fields.String()
    plate_color = fields.String()
    code = fields.String()
    name = fields.String()


class PeriodOut(Schema):
    start = fields.Date()
    end = fields.Date(allow_none=True)


class EntryOut(Schema):
    id = fields.Integer()
    list_kind = fields.String()
    subject = fields.Nested(Subject)
    rule = fields.String()
    listed_at = AwareDateTime()
    period = fields.Nested(PeriodOut)
    evidence = fields.List(fields.Integer())
    ratio = fields.Float(allow_none=True)
    active = fields.Boolean()
    delisted_at = AwareDateTime(allow_none=True)
    delist_reason = fields.String(allow_none=True)


class EntryPage(Schema):
    items = fields.List(fields.Nested(EntryOut))
    next_cursor = fields.String(allow_none=True)


class PublicEntryOut(Schema):
    subject = fields.Nested(Subject)
    rule = fields.String()
    listed_on = fields.Date()


class PublicPage(Schema):
    items = fields.List(fields.Nested(PublicEntryOut))
    next_cursor = fields.String(allow_none=True)


class SupervisedVehicle(Schema):
    plate = fields.String()
    plate_color = fields.String()


class KeySupervisionItem(Schema):
    vehicle = fields.Nested(SupervisedVehicle)
    reasons = fields.List(fields.String())
    since = AwareDateTime()


class KeySupervisionPage(Schema):
    items = fields.List(fields.Nested(KeySupervisionItem))
    next_cursor = fields.String(allow_none=True)
