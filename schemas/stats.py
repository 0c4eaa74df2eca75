from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields

from schemas.common import REGION, check_year


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
    region = fields.String(load_default=None, validate=REGION)
    month = MonthField(load_default=None)  # default: the current local month


class RegionQuery(Schema):
    region = fields.String(load_default=None, validate=REGION)
