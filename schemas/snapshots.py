"""Wire format of black-smoke snapshots: the upload's metadata part, the queue and the review."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.registry import PLATE_COLORS
from schemas import examples
from schemas.cases import CaseVehicleOut
from schemas.common import REGION, AwareDateTime, PageArgs, StrictInteger, doc, note_text
from schemas.events import StationRecordIn
from schemas.registry import PlateField

SNAPSHOT_STATUSES = ("received", "pending_review", "confirmed", "rejected")
RINGELMANN = validate.Range(0, 5)


class SnapshotMetadataIn(StationRecordIn):
    captured_at = AwareDateTime(required=True,
                                metadata=doc("When the camera took the pictures, RFC 3339 with an offset.",
                                             "2026-11-22T08:15:30+08:00"))
    camera_ringelmann = StrictInteger(allow_none=True, validate=RINGELMANN,
                                      metadata=doc("The camera's own Ringelmann level, 0 to 5, when it has one.", 2))


class SnapshotUploadDoc(Schema):
    """The multipart form, for the OpenAPI document only (the route reads the parts itself)."""

    metadata = fields.Nested(SnapshotMetadataIn, required=True,
                             metadata=doc("The snapshot's metadata: a part of JSON text.", examples.SNAPSHOT_METADATA))
    images = fields.List(
        fields.Raw(metadata={"type": "string", "format": "binary"}), required=True,
        metadata={"description": "1 to 3 file parts, JPEG or PNG, each at most 5 MiB and 8,000 px a side "
                                 "(the limits are settings)."},
    )


class SnapshotListArgs(PageArgs):
    status = fields.String(load_default="pending_review", validate=validate.OneOf(SNAPSHOT_STATUSES),
                           metadata=doc("Which snapshots: `received`, `pending_review` (default), `confirmed` or "
                                        "`rejected`.", "pending_review"))


class ReviewIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("confirm", "reject")),
                             metadata=doc("`confirm` (creates a violation) or `reject`.", "confirm"))
    ringelmann = StrictInteger(allow_none=True, validate=RINGELMANN,
                               metadata=doc("The level the reviewer sees, 0 to 5: required with confirm, absent with "
                                            "reject.", 2))
    note = fields.String(allow_none=True, validate=[validate.Length(max=2000), note_text],
                         metadata=doc("Free text for the record, up to 2,000 characters.", "浓黑烟，尾部清晰可见"))
    # The person's reading of the image; needed to confirm when the camera's is unreadable or ambiguous.
    plate = PlateField(load_default=None, allow_none=True, validate=validate.Length(max=16),
                       metadata=doc("The plate the reviewer reads on the image, matched exactly; required to "
                                    "confirm when the camera's read is unreadable or ambiguous.", "苏B12345"))
    plate_color = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PLATE_COLORS),
                                metadata=doc("The plate colour the reviewer reads; the camera's when absent.",
                                             "yellow"))

    @validates_schema
    def _level_with_confirm_only(self, data: dict[str, Any], **_: object) -> None:
        level = data.get("ringelmann")
        if data.get("decision") == "confirm" and level is None:
            raise ValidationError({"ringelmann": ["is required to confirm"]})
        if data.get("decision") == "reject" and level is not None:
            raise ValidationError({"ringelmann": ["is only given with confirm"]})


class PlumeOut(Schema):
    image = fields.Integer(metadata={"description": "index of the image the region lies in (from 0)"})
    polygon = fields.List(
        fields.List(fields.Integer()),
        metadata={"description": "simplified outline, [[x, y], ...] in that image's pixels (at most about 64 points)"},
    )
    bbox = fields.List(fields.Integer(), metadata={"description": "[x, y, w, h] in that image's pixels"})


class EstimateOut(Schema):
    level = fields.Integer()
    blackness = fields.Float()
    confidence = fields.Float()
    image = fields.Integer(metadata={"description": "index of the image the level comes from"})
    plume_box = fields.List(fields.Integer(), allow_none=True)
    background_box = fields.List(fields.Integer(), allow_none=True)
    plume = fields.Nested(PlumeOut, metadata={"description": "the region measured; absent when no plume was found"})


class ReviewOut(Schema):
    decision = fields.String()
    ringelmann = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    by = fields.String()
    at = AwareDateTime()


class SnapshotOut(Schema):
    id = fields.Integer()
    event_id = fields.String()
    plate = fields.String()
    plate_color = fields.String()
    plate_confidence = fields.Float()
    captured_at = AwareDateTime()
    received_at = AwareDateTime()
    lane = fields.Integer(allow_none=True)
    estimated_ringelmann = fields.Integer(allow_none=True)
    estimate = fields.Nested(EstimateOut, allow_none=True)
    plume = fields.Nested(
        PlumeOut, allow_none=True, metadata={"description": "the plume region the estimate measured (estimate.plume)"}
    )
    camera_ringelmann = fields.Integer(allow_none=True)
    status = fields.String()
    images = fields.List(fields.String())
    review = fields.Nested(ReviewOut, allow_none=True)
    violation_id = fields.Integer(allow_none=True)


class SnapshotPage(Schema):
    items = fields.List(fields.Nested(SnapshotOut))
    next_cursor = fields.String(allow_none=True)


class SuspectedCloneQuery(PageArgs):
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))


class SuspectedCloneOut(Schema):
    id = fields.Integer()
    snapshot_id = fields.Integer()
    vehicle = fields.Nested(CaseVehicleOut, metadata={"description": "the registered electric vehicle the plate names"})
    region = fields.String(metadata={"description": "where the smoke was seen (the camera's region)"})
    captured_at = AwareDateTime()
    ringelmann = fields.Integer(metadata={"description": "the level the reviewer saw"})
    note = fields.String(allow_none=True)
    reported_by = fields.String()
    reported_at = AwareDateTime()


class SuspectedClonePage(Schema):
    items = fields.List(fields.Nested(SuspectedCloneOut))
    next_cursor = fields.String(allow_none=True)
