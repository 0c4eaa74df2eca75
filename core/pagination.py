"""Keyset pagination: stable while new rows arrive, cheap at any depth.

A cursor is the (sort value, id) of the last row served, opaque to the client.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.errors import ApiError

T = TypeVar("T")


def encode_cursor(key: Any, row_id: int) -> str:
    if isinstance(key, datetime):
        key = {"t": key.isoformat()}
    raw = json.dumps([key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        if isinstance(key, dict):
            key = datetime.fromisoformat(key["t"])
        if not isinstance(row_id, int):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        raise ApiError("cursor is not one this server issued", code="invalid_cursor") from None
    return key, row_id


_BIGINT = range(-(2**63), 2**63)


def _check_cursor(key: Any, sort_col: InstrumentedAttribute[Any], row_id: int) -> None:
    """A cursor is the client's to send back: one not made for this listing is a 400, not a
    value the database refuses (a string for a time, a naive time, an id beyond 64 bits)."""
    kind = sort_col.type.python_type
    wrong = (
        (key is not None and (type(key) is bool or not isinstance(key, kind)))
        or (isinstance(key, datetime) and key.utcoffset() is None)
        or (kind is int and key not in _BIGINT) or type(row_id) is bool or row_id not in _BIGINT
    )
    if wrong:
        raise ApiError("cursor is not one this server issued", code="invalid_cursor")


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
        key, last_id = decode_cursor(cursor)
        _check_cursor(key, sort_col, last_id)
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
