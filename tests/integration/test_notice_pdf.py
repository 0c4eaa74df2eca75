"""The mandatory inspection and repair notice on paper: rendered, read back, and looked at."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import datetime, timedelta

import pypdf
import pytest

from tests.conftest import cli_json
from tests.factories import CST, event
from tests.integration.test_cases import Loop


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_notice_names_vehicle_evidence_deadline_basis_and_repair_stations(
        app, client, login, runner, make_station, drain, tmp_path):
    station = make_station("RS001", name="锡山遥测点", location="G312 K1203 东向", lat="31.49", lon="120.31")
    loop = Loop(client, login, runner)
    cli_json(runner, "orgs", "create", "--code", "M002", "--kind", "repair_station", "--name", "无锡汽修二厂",
             "--region", "320281")
    now = datetime.now(CST).replace(second=0, microsecond=0)
    for n, hours in enumerate((3, 1)):
        r = station.post_json("/api/v1/remote-sensing/events", event(
            f"RS001-{n}", at=now - timedelta(hours=hours), measurements={"no_ppm": 1850 - n}))
        assert r.status_code == 202
    drain()
    (case,) = client.get("/api/v1/cases", headers=loop.police).get_json()["items"]
    no_notice = client.get(f"/api/v1/cases/{case['id']}/notice.pdf", headers=loop.police)
    assert no_notice.status_code == 404 and no_notice.get_json()["error"]["code"] == "no_notice"
    assert loop.notice(case["id"], deadline_days=15).status_code == 201

    r = client.get(f"/api/v1/cases/{case['id']}/notice.pdf", headers=loop.police)
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    text = _text(r.data)
    deadline = (now.date() + timedelta(days=15)).isoformat()
    for expected in ("强制检验维修通知书", "苏B12345", "黄牌", "遥感监测", "锡山遥测点", "G312 K1203",
                     "1849", "限值 1500", deadline, "大气污染防治法", "无锡汽修二厂", "M001",
                     (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")):  # local time
        assert expected in text.replace(" ", "") or expected in text, expected
    assert client.get(f"/api/v1/cases/{case['id']}/notice.pdf", headers=loop.repairer).status_code == 403

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(r.data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(tmp_path / "notice")], check=True)
    png = (tmp_path / "notice.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_a_missing_font_is_a_clear_error(app, client, login, runner, monkeypatch):
    loop = Loop(client, login, runner)
    case_id = loop.open_case()
    loop.notice(case_id)
    monkeypatch.setattr(app.extensions["lantian"].settings, "notice_font", "/nonexistent/font.ttc", raising=False)
    r = client.get(f"/api/v1/cases/{case_id}/notice.pdf", headers=loop.police)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "notice_font_missing"
    assert "fonts-wqy-microhei" in r.get_json()["error"]["message"]
