"""Violations and cases as CSV and XLSX: the listings' filters and scoping, formula-safe cells."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import openpyxl
import pytest

from enforcement.exports import safe_cell
from tests.factories import CST
from tests.integration.test_cases import Loop


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("-12.5", "-12.5"), ("+3", "+3"), ("1e5", "1e5"), ("苏B12345", "苏B12345"), ("", ""), (-7, -7), (None, None),
    (True, "是"),
])
def test_cells_that_would_be_formulas_are_prefixed(value, cell):
    assert safe_cell(value) == cell


def _rows(r: Any) -> list[list[str]]:
    assert r.status_code == 200, r.data[:300]
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    text = r.data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_violation_export_follows_the_listing(client, login, runner):
    loop = Loop(client, login, runner)
    at = datetime.now(CST).replace(microsecond=0) - timedelta(hours=2)
    loop.open_case(tested_at=at.isoformat())
    loop.open_case("苏B54321", region="320500", headers=login("env_officer", username="officer-everywhere"))
    loop.open_case("苏B54322", kind="depot_check")
    police = login("police", "320200", username="police-2")
    rows = _rows(client.get("/api/v1/violations?format=csv", headers=police))
    assert rows[0][:3] == ["违法记录编号", "号牌号码", "号牌颜色"] and len(rows) == 3  # 320500 is outside
    listed = client.get("/api/v1/violations", headers=police).get_json()["items"]
    assert [int(r[0]) for r in rows[1:]] == [v["id"] for v in listed]  # same order, same rows
    by_plate = {r[1]: r for r in rows[1:]}
    assert by_plate["苏B12345"][5] == at.strftime("%Y-%m-%d %H:%M:%S")  # local time
    only = _rows(client.get("/api/v1/violations?format=csv&source=depot_check", headers=police))
    assert [r[1] for r in only[1:]] == ["苏B54322"]
    r = client.get("/api/v1/violations?format=pdf", headers=police)
    assert r.status_code == 422 and "format" in r.get_json()["error"]["fields"]
    assert client.get("/api/v1/violations?format=csv", headers=loop.repairer).status_code == 403


def test_exports_stream_across_pages_and_xlsx_opens(app, client, login, runner, monkeypatch):
    from enforcement import exports

    monkeypatch.setattr(exports, "PAGE_ROWS", 2)
    loop = Loop(client, login, runner)
    for n in range(5):
        loop.open_case(f"苏B5432{n}")
    rows = _rows(client.get("/api/v1/cases?format=csv", headers=loop.police))
    assert len(rows) == 6 and len({r[0] for r in rows[1:]}) == 5
    assert rows[0][:5] == ["案件编号", "号牌号码", "号牌颜色", "地区", "状态"]
    r = client.get("/api/v1/cases?format=xlsx&status=open", headers=loop.police)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(r.data), read_only=True).active
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0][0] == "案件编号" and len(cells) == 6
    assert sorted(c[1] for c in cells[1:]) == [f"苏B5432{n}" for n in range(5)]
    assert all(isinstance(c[0], int) for c in cells[1:])
    assert _rows(client.get("/api/v1/cases?format=csv&status=closed", headers=loop.police)) == [rows[0]]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_streamed_export_gives_its_connection_back(app, client, login, runner, fmt):
    """The stream reads after Flask's first teardown: it closes its session itself, else the
    transaction stays open (and holds its locks) until the session is garbage collected."""
    loop = Loop(client, login, runner)
    loop.open_case()
    pool = app.extensions["lantian"].engine.pool
    for path in (f"/api/v1/cases?format={fmt}", f"/api/v1/violations?format={fmt}"):
        r = client.get(path, headers=loop.police)
        assert r.status_code == 200 and r.data
        assert pool.checkedout() == 0, path
