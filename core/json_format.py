"""JSON as Lantian writes it: dates as YYYY-MM-DD, times as RFC 3339 in UTC, by orjson.

Flask-free, so what a service stores as JSON text (a violation's evidence, written once
when it is judged) reads byte for byte as the API would have written it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson

from core.db import json_loads

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class Raw:
    """JSON text already written, embedded in an answer as it is (neither parsed nor re-encoded)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        return json_loads(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raw) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def default(o: Any) -> Any:
    """What orjson does not write itself: times, dates and already written JSON."""
    if isinstance(o, datetime):
        return o.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Raw):
        return orjson.Fragment(o.text)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def encode(obj: Any, fallback: Callable[[Any], Any] = default) -> bytes:
    """`obj` as compact UTF-8 JSON. What orjson refuses (integers beyond 64 bits) is written by
    the standard encoder, which reads embedded JSON back instead of taking it as a fragment."""
    try:
        return orjson.dumps(obj, default=fallback, option=OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(obj, default=lambda o: standard(o, fallback), ensure_ascii=False,
                          separators=(",", ":")).encode()


def standard(o: Any, fallback: Callable[[Any], Any] = default) -> Any:
    """`fallback` for the standard encoder, which cannot take an orjson fragment."""
    return o.value() if isinstance(o, Raw) else fallback(o)
