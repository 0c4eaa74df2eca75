"""Field types and small schemas shared by every wire format."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from core.errors import ApiError


class FullMatch(validate.Regexp):
    """A pattern the whole value must match: `re.match` with `$` takes "320200\\n"."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# ASCII digits only: `\d` also takes full-width and other scripts' digits.
REGION = FullMatch(r"[0-9]{6}", error="must be a 6-digit administrative region code (ASCII digits)")
PRINTABLE_ID = FullMatch(r"[\x21-\x7e]{1,100}", error="must be 1 to 100 printable ASCII characters")

# C0 controls and DEL: a single-line text takes none; a note keeps tab and line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CONTROL_IN_NOTE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters (line breaks included)")
    return value


def note_text(value: str) -> str:
    if _CONTROL_IN_NOTE.search(value):
        raise ValidationError("must not contain control characters other than tab and line breaks")
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValidationError("must not be blank")
    return value


def doc(description: str, example: Any) -> dict[str, Any]:
    """A field's `metadata` for the OpenAPI document: what it means, and a value it takes."""
    return {"description": description, "example": example}


UNSTORABLE_MESSAGE = "text must not contain NUL (U+0000) or unpaired surrogate (U+D800-U+DFFF) characters"
# JSON can spell both (\u0000, a lone \ud800); PostgreSQL stores neither in text or JSONB,
# and a lone surrogate cannot even be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(value: Any) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds NUL or a lone surrogate.

    Such input is refused at the edge instead of failing deep inside a transaction.
    """
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(has_unstorable(k) or has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unstorable(v) for v in value)
    return False


def may_hold_unstorable(raw: str | bytes) -> bool:
    """Whether JSON text could hold NUL or a lone surrogate once parsed, so that only such
    text needs `has_unstorable`'s walk. In UTF-8 bytes either needs a \\u escape, a NUL byte
    (refused by the parser, but counted) or a lead byte 0xED (the parser decodes surrogates
    with "surrogatepass"); UTF-16 and UTF-32 text, which the parser also takes, has NUL bytes."""
    if isinstance(raw, bytes):
        return b"\\u" in raw or b"\x00" in raw or b"\xed" in raw
    return "\\u" in raw or _UNSTORABLE.search(raw) is not None


def refuse_unstorable(value: Any) -> None:
    if has_unstorable(value):
        raise ValidationError({"_schema": [UNSTORABLE_MESSAGE]})


def _not_json(name: str) -> Any:
    """NaN and Infinity: Python's extension, not JSON (RFC 8259), and no database stores them."""
    raise ValueError(f"{name} is not a JSON value")


class _NumberOutOfRange(Exception):
    pass


NUMBER_OUT_OF_RANGE = "holds a number beyond the range of a double (about 1.8e308)"


def _finite(literal: str) -> float:
    """JSON allows 1e400; a double and PostgreSQL's JSONB do not take what it becomes (inf)."""
    value = float(literal)
    if math.isinf(value):
        raise _NumberOutOfRange
    return value


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"[\[{][\]}]")


def too_deep(data: bytes) -> bool:
    """Whether arrays and objects in JSON text nest deeper than MAX_JSON_DEPTH, read off its
    brackets outside strings before the parser recurses into them: each pass removes the
    innermost pairs (one level), so the work is bounded by the limit, not by the input."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    # What is left unbalanced is malformed JSON, for the parser to say so.
    return bool(brackets) and 2 * (brackets.count(b"[") + brackets.count(b"{")) == len(brackets)


def _too_deep_error(what: str) -> ApiError:
    return ApiError(f"{what} nests arrays and objects deeper than {MAX_JSON_DEPTH} levels", code="too_deep")


def parse_json(data: str | bytes, what: str = "the body", *, check_text: bool = True) -> Any:
    """A request body or part as JSON: 400 when it is not JSON or nests deeper than 32 levels,
    422 when its text or numbers cannot be stored (text: unless the caller checks its items
    one by one, as a batch does)."""
    if too_deep(data.encode() if isinstance(data, str) else data):
        raise _too_deep_error(what)
    try:
        value = json.loads(data, parse_constant=_not_json, parse_float=_finite)
    except _NumberOutOfRange:
        raise ValidationError({"_schema": [f"{what} {NUMBER_OUT_OF_RANGE}"]}) from None
    except RecursionError:  # unbalanced brackets deeper than the interpreter's stack
        raise _too_deep_error(what) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(f"{what} is not valid JSON", code="malformed_json") from None
    if check_text and may_hold_unstorable(data):
        refuse_unstorable(value)
    return value


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


# Input dates and times are kept inside these years, so the arithmetic done on them (local
# midnight in UTC, a day before, a deadline after) never leaves what Python can represent.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
_YEAR_MESSAGE = f"must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}"


def check_year(year: int) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValidationError(_YEAR_MESSAGE)


class Day(fields.Date):
    """A calendar day (YYYY-MM-DD) within the years Lantian accepts."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        day = super()._deserialize(value, attr, data, **kwargs)
        check_year(day.year)
        return day


class AwareDateTime(fields.AwareDateTime):
    """RFC 3339 with an offset; answers always in UTC."""

    default_error_messages = {
        "invalid_awareness": "must include its UTC offset, e.g. 2026-11-22T08:15:30+08:00 (or Z for UTC)",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        check_year(moment.year)
        return moment

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
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500),
                           metadata=doc("Items per page, 1 to 500 (default 50).", 50))
    cursor = fields.String(load_default=None,
                           metadata=doc("The `next_cursor` of the previous page; absent for the first page.",
                                        "MTc5NTMwNjUzMDoxMjM"))


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")


def uscc_valid(code: str) -> bool:
    """Unified social credit code (GB 32100-2015): 18 characters, the last a check digit."""
    if not _USCC_RE.fullmatch(code):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]


def validate_uscc(code: str) -> None:
    if not uscc_valid(code):
        raise ValidationError("is not a valid 18-character unified social credit code")
