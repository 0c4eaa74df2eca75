"""Structured logs: one JSON line per request and per job, personal data masked.

Plates, VINs and names are personal information (Personal Information Protection Law): a
log line keeps the first characters of a plate and nothing of a VIN or a person's name, in
whatever field or free text they appear. Lines from the standard library's loggers (errors,
warnings) are rendered the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from core.plates import PROVINCES, SUFFIXES, mask_plate

# A plate as it may appear in a path or a message, cleaned or not quite.
_PLATE = re.compile(f"[{PROVINCES}使][A-Z][A-Z0-9]{{4,6}}[{SUFFIXES}]?")
_VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")
# Fields whose whole value is personal: masked whatever it looks like.
_PERSONAL_KEYS = frozenset({"plate", "plate_number", "vin", "name", "owner", "owner_name", "driver", "phone"})


def mask_text(text: str) -> str:
    return _VIN.sub("*" * 17, _PLATE.sub(lambda m: mask_plate(m.group()), text))


def _mask(value: Any, key: str | None = None) -> Any:
    if key in _PERSONAL_KEYS and isinstance(value, str):
        return mask_plate(value) if key.startswith("plate") else "*" * min(len(value), 8)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    return value


def mask_personal(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every field and the message, masked."""
    return {k: _mask(v, k) for k, v in event.items()}


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def install(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """JSON lines on `stream` (standard error) for structlog and standard-library loggers alike."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
                    mask_personal, structlog.processors.JSONRenderer(serializer=_dumps)],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("lantian-json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lantian-json"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def get(name: str) -> Any:
    return structlog.get_logger(name)

