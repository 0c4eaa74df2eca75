"""The supervision dashboard: who may sign in, the same figures as the stats API, the charts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import cli_json
from tests.factories import event, vehicle
from tests.integration.test_black_smoke_page import csrf, person
from tests.integration.test_stats import last_november, post_batch


def dashboard_client(app: Any, runner: Any, username: str, role: str, region: str | None = "320200") -> Any:
    person(runner, username, role, region)
    client = app.test_client()
    token = csrf(client.get("/dashboard/login").data)
    r = client.post("/dashboard/login", data={"username": username, "password": "pw-" + username, "csrf": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard"), r.get_data(as_text=True)
    return client


@pytest.fixture()
def november(client: Any, login: Any, station: Any, drain: Any) -> str:
    client.put("/api/v1/registry/vehicles", headers=login("admin"),
               json={"vehicles": [vehicle(f"苏B7{n:04d}") for n in range(5)]})
    at = last_november()
    post_batch(station, [
        *(event(f"d{n}", at=at + timedelta(minutes=n), plate=f"苏B7{n:04d}") for n in range(4)),
        event("d-exceed", at=at + timedelta(hours=2), plate="苏B70000", measurements={"no_ppm": 1600}),
        event("d-invalid", at=at, plate="苏B70004", conditions={"wind_speed_ms": 9}),
    ])
    drain()
    return at.strftime("%Y-%m")


def test_env_transport_and_police_sign_in_others_do_not(app, runner):
    for n, role in enumerate(("env_officer", "transport", "police")):
        dashboard_client(app, runner, f"p{n}", role)
    cli_json(runner, "orgs", "create", "--code", "I1", "--kind", "inspection_station", "--name", "I", "--region",
             "320200")
    cli_json(runner, "users", "create", "--username", "m1", "--password", "pw-m1", "--role", "inspection_station",
             "--org", "I1")
    client = app.test_client()
    assert client.get("/dashboard").headers["Location"].endswith("/dashboard/login")
    token = csrf(client.get("/dashboard/login").data)
    r = client.post("/dashboard/login", data={"username": "m1", "password": "pw-m1", "csrf": token})
    assert r.status_code == 200 and "公安交管部门人员" in r.get_data(as_text=True)
    assert client.get("/dashboard/charts/quota.svg").status_code == 302


def test_the_dashboard_shows_the_stats_endpoints_figures(app, runner, client, login, november):
    police = login("police", "320200")
    api = client.get(f"/api/v1/stats/supervision?month={november}", headers=police).get_json()
    page = dashboard_client(app, runner, "zhao", "police").get(f"/dashboard?month={november}").get_data(as_text=True)
    assert f"{november} 对照行动计划目标" in page
    quota = re.search(r'id="quota">.*?<b>(\d+) / (\d+)</b>', page, re.S)
    assert quota and (int(quota[1]), int(quota[2])) == (api["quota"]["vehicles_tested"], 60) == (4, 60)
    assert '<span class="unmet">未达标</span>' in page
    winter = api["winter"]
    assert (winter["vehicles_tested"], winter["registered"], winter["coverage"]) == (4, 5, 0.8)
    assert f"<b>80.0%</b>{winter['vehicles_tested']} / {winter['registered']} · 目标 80.0% · " in page
    assert '<tr data-fuel="diesel"><td>柴油</td><td class="num">5</td><td class="num">1 (20.0%)</td>' in page
    assert "风速过大 (1)" in page  # the station's top invalid reason
    assert re.search(r'<tr data-station="RS001">.*?<td class="num">6</td><td class="num">83\.3%</td>', page)
    far = dashboard_client(app, runner, "qian", "police", "330100").get(f"/dashboard?month={november}")
    assert '<tr data-station="RS001">' not in far.get_data(as_text=True)


def test_charts_are_svg_drawn_on_the_server_with_nothing_from_outside(app, runner, november):
    officer = dashboard_client(app, runner, "li", "env_officer")
    page = officer.get(f"/dashboard?month={november}").get_data(as_text=True)
    charts = re.findall(r'<img class="chart" id="chart-(\w+)" src="([^"]+)"', page)
    assert [name for name, _ in charts] == ["quota", "winter", "exceedance", "stations"]
    for name, src in charts:
        r = officer.get(src.replace("&amp;", "&"))
        assert r.status_code == 200 and r.mimetype == "image/svg+xml", name
        assert "script-src" not in r.headers["Content-Security-Policy"]  # default-src 'none': no script runs
        svg = r.get_data(as_text=True)
        assert "<svg" in svg and not re.search(r'(src|href)="(https?:)?//', svg), name
    assert "320200" in officer.get(f"/dashboard/charts/quota.svg?month={november}").get_data(as_text=True)
    assert "RS001" in officer.get(f"/dashboard/charts/stations.svg?month={november}").get_data(as_text=True)
    assert officer.get("/dashboard/charts/other.svg").status_code == 404


def test_bad_filters_are_refused_and_the_page_has_no_inline_script(app, runner):
    officer = dashboard_client(app, runner, "li", "env_officer")
    assert officer.get("/dashboard?month=2026-13").status_code == 400
    assert officer.get("/dashboard?region=32").status_code == 400
    html = officer.get("/dashboard?lang=en").get_data(as_text=True)
    assert "Supervision dashboard" in html and "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and not re.search(r"\s(style|on[a-z]+)=", html)
