"""Violations and cases as spreadsheets (CSV or XLSX) for officers who work from them.

Headers are in Chinese and times are local (settings.timezone), as on paper; the JSON API
stays UTC. Rows are read in keyset pages, so an export of any size holds one page in
memory: CSV is streamed as it is written, XLSX is written by XlsxWriter's constant-memory
mode to a temporary file and streamed from it. Every text cell is formula-safe.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter

from enforcement.models import Case, Violation

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PAGE_ROWS = 500

_FORMULA_START = ("=", "+", "-", "@")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

Cell = str | int | float | None
Column = tuple[str, Callable[[Any, dict[str, Any]], Cell]]


def safe_cell(value: Any) -> Cell:
    """A text cell a spreadsheet would read as a formula gets a leading apostrophe; numbers stay."""
    if value is None or isinstance(value, bool):
        return None if value is None else ("是" if value else "否")
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def local(value: datetime | date | None, tz: ZoneInfo) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


# (header, cell of a row given the page's context: "plates" by vehicle id, "tz", ...)
_PLATE: tuple[Column, ...] = (
    ("号牌号码", lambda r, c: c["plates"][r.vehicle_id].plate),
    ("号牌颜色", lambda r, c: c["plates"][r.vehicle_id].plate_color),
)
VIOLATION_COLUMNS: tuple[Column, ...] = (
    ("违法记录编号", lambda v, c: v.id),
    *_PLATE,
    ("来源", lambda v, c: v.source),
    ("来源记录", lambda v, c: v.source_ref),
    ("检测时间", lambda v, c: local(v.detected_at, c["tz"])),
    ("检测日期", lambda v, c: local(v.detected_on, c["tz"])),
    ("检测地区", lambda v, c: v.region),
    ("车辆登记地区", lambda v, c: v.vehicle_region),
    ("超标项目", lambda v, c: "、".join(map(str, (v.details or {}).get("pollutants") or []))),
    ("状态", lambda v, c: v.status),
    ("撤销原因", lambda v, c: v.withdrawn_reason),
    ("案件编号", lambda v, c: v.case_id),
)

CASE_COLUMNS: tuple[Column, ...] = (
    ("案件编号", lambda k, c: k.id),
    *_PLATE,
    ("地区", lambda k, c: k.region),
    ("状态", lambda k, c: k.status),
    ("立案时间", lambda k, c: local(k.opened_at, c["tz"])),
    ("整改期限", lambda k, c: local(k.deadline_on, c["tz"])),
    ("是否逾期", lambda k, c: c["overdue"](k)),
    ("处罚已覆盖", lambda k, c: k.penalty_settled),
    ("复检合格", lambda k, c: k.retest_passed),
    ("结案时间", lambda k, c: local(k.closed_at, c["tz"])),
    ("结案原因", lambda k, c: k.closed_reason),
)


def table(
    pages: Iterable[Sequence[Violation | Case]], columns: Sequence[Column],
    context: Callable[[Sequence[Any]], dict[str, Any]],
) -> Iterator[list[Cell]]:
    """The header row, then one formula-safe row per record; `context` is read once per page."""
    yield [header for header, _ in columns]
    for rows in pages:
        ctx = context(rows)
        for row in rows:
            yield [safe_cell(cell(row, ctx)) for _, cell in columns]


def csv_chunks(rows: Iterable[list[Cell]]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (spreadsheets then read the Chinese right), a chunk per page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff".encode()
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % PAGE_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_chunks(rows: Iterable[list[Cell]], sheet: str) -> Iterator[bytes]:
    """A constant-memory workbook written to a temporary file, then streamed from it."""
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                          "strings_to_urls": False, "strings_to_numbers": False})
        ws = book.add_worksheet(sheet)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    ws.write_string(r, c, value)
                elif value is not None:
                    ws.write_number(r, c, value)
        book.close()
        with open(path, "rb") as f:
            while chunk := f.read(64 * 1024):
                yield chunk
    finally:
        os.unlink(path)


def chunks(fmt: str, rows: Iterable[list[Cell]], sheet: str) -> Iterator[bytes]:
    return csv_chunks(rows) if fmt == "csv" else xlsx_chunks(rows, sheet)
