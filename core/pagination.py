"""Keyset pagination: stable while new rows arrive, cheap at any depth.

A cursor is the (sort value, id) of the last row served, opaque to the client. It comes
back from the client, so it is decoded by one bounded, type-checked decoder before any of
it is used: a forged cursor is a 400, never work in proportion to what it claims.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.errors import ApiError

T = TypeVar("T")

# A cursor this server issues is well under 100 characters (a time and an id).
MAX_CURSOR_CHARS = 200
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
_INVALID = "cursor is not one this server issued"


def encode_cursor(key: Any, row_id: int) -> str:
    if isinstance(key, datetime):
        key = {"t": key.isoformat()}
    raw = json.dumps([key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _is_bigint(value: Any) -> bool:
    # Compared, never `in range(...)`: membership of a non-integer walks the whole range.
    return type(value) is int and _BIGINT_MIN <= value <= _BIGINT_MAX


def decode_cursor(cursor: str, key_type: type = object, *, nullable: bool = False) -> tuple[Any, int]:
    """(sort value, id) of `cursor`, the value of type `key_type` (None only when `nullable`);
    400 `invalid_cursor` for anything this server would not have issued."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if type(decoded) is not list or len(decoded) != 2:
            raise ValueError
        key, row_id = decoded
        if type(key) is dict:
            if set(key) != {"t"} or type(key["t"]) is not str:
                raise ValueError
            key = datetime.fromisoformat(key["t"])
            if key.utcoffset() is None:
                raise ValueError
        if not _is_bigint(row_id) or not _key_fits(key, key_type, nullable):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise ApiError(_INVALID, code="invalid_cursor") from None
    return key, row_id


def _key_fits(key: Any, key_type: type, nullable: bool) -> bool:
    if key is None:
        return nullable
    if key_type is object:
        return type(key) in (int, float, str, datetime) and (type(key) is not int or _is_bigint(key))
    if key_type is int:
        return _is_bigint(key)
    return type(key) is key_type


def keyset(
    stmt: Select[Any],
    sort_col: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> Select[Any]:
    """`stmt` after the cursor in (sort_col, id_col) order, with one row more than a page
    (that row says whether there is a next one)."""
    if cursor:
        key, last_id = decode_cursor(cursor, sort_col.type.python_type, nullable=bool(sort_col.nullable))
        # A row-value comparison is an index condition; the OR form is only a filter.
        # The cursor's values are bound with the columns' own types (UTC datetimes stay UTC).
        row, last = tuple_(sort_col, id_col), tuple_(literal(key, sort_col.type), literal(last_id, id_col.type))
        stmt = stmt.where(row < last if descending else row > last)
    order = (sort_col.desc(), id_col.desc()) if descending else (sort_col.asc(), id_col.asc())
    return stmt.order_by(*order).limit(limit + 1)


def page(
    session: Session,
    stmt: Select[Any],
    sort_col: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> tuple[Sequence[Any], str | None]:
    """One page of `stmt` ordered by (sort_col, id_col), newest first by default."""
    stmt = keyset(stmt, sort_col, id_col, limit=limit, cursor=cursor, descending=descending)
    rows = session.scalars(stmt).all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, sort_col.key), getattr(last, id_col.key))


def walk(
    session: Session,
    stmt: Select[Any],
    sort_col: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    *,
    size: int,
) -> Iterator[Sequence[Any]]:
    """Every row of `stmt`, newest first, one keyset page of `size` rows at a time (exports)."""
    cursor: str | None = None
    while True:
        rows, cursor = page(session, stmt, sort_col, id_col, limit=size, cursor=cursor)
        if rows:
            yield rows
        if cursor is None:
            return
