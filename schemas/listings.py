"""Wire format of blacklists, key supervision and their public disclosure."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import REGION, AwareDateTime, PageArgs, doc, not_blank, note_text


class BlacklistQuery(PageArgs):
    subject = fields.String(load_default=None, validate=validate.OneOf(("vehicle", "fleet")),
                            metadata=doc("Only `vehicle` or only `fleet` entries.", "vehicle"))
    active = fields.Boolean(load_default=None,
                            metadata=doc("`true`: only active entries; `false`: only delisted ones.", True))
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))


class PublicQuery(PageArgs):
    subject = fields.String(load_default=None, validate=validate.OneOf(("vehicle", "fleet")),
                            metadata=doc("Only `vehicle` or only `fleet` entries.", "vehicle"))
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))


class KeySupervisionQuery(PageArgs):
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))
    reason = fields.String(load_default=None,
                           validate=validate.OneOf(("overdue_case", "no_remote_obd", "three_strikes")),
                           metadata=doc("Only vehicles with this reason, such as `overdue_case`, `no_remote_obd` or "
                                        "`three_strikes`.", "overdue_case"))


class DelistIn(Schema):
    reason = fields.String(required=True, validate=[validate.Length(max=2000), not_blank, note_text],
                           metadata=doc("Why the entry is taken off the list.", "企业整改完成，复核合格"))


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
