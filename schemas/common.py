"""Field types and small schemas shared by every wire format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

REGION = validate.Regexp(r"^\d{6}$", error="must be a 6-digit administrative region code")
PRINTABLE_ID = validate.Regexp(r"^[\x21-\x7e]{1,100}$", error="must be 1 to 100 printable ASCII characters")


class StrictFloat(fields.Float):
    """A JSON number only: strings and booleans from a firmware bug are refused, not coerced."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)


class AwareDateTime(fields.AwareDateTime):
    """RFC 3339 with an offset; answers always in UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def not_in_future(value: datetime, tolerance_s: int, field: str) -> None:
    if value > datetime.now(UTC) + timedelta(seconds=tolerance_s):
        raise ValidationError({field: [f"is more than {tolerance_s} s in the future"]})


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class Error(Schema):
    error = fields.Nested(ErrorBody)


class PageArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None)


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def uscc_valid(code: str) -> bool:
    """Unified social credit code (GB 32100-2015): 18 characters, the last a check digit."""
    if not _USCC_RE.match(code):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]


def validate_uscc(code: str) -> None:
    if not uscc_valid(code):
        raise ValidationError("is not a valid 18-character unified social credit code")
