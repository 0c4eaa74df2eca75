"""Cells for files people open in a spreadsheet (CSV, XLSX exports)."""

from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula (it starts with =, +, - or @ and is not
    a number), prefixed with ' so that it shows as the text it is (API.md section 9)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
