from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields

from schemas.common import REGION, check_year, doc


class MonthField(fields.String):
    """YYYY-MM, loaded as the first day of that month."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            year, month = text.split("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError
            first = date(int(year), int(month), 1)
        except ValueError:
            raise ValidationError("must be a month as YYYY-MM") from None
        check_year(first.year)
        return first


class SupervisionQuery(Schema):
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))
    month = MonthField(load_default=None, metadata=doc("`YYYY-MM` (default: the current local month).", "2026-11"))


class RegionQuery(Schema):
    region = fields.String(load_default=None, validate=REGION,
                           metadata=doc("Only this region and its children (6-digit administrative code).", "320200"))
