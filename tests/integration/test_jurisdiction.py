"""Jurisdiction (DOMAIN.md section 7): a violation, and the case it is in, belong to where it
was detected and to the vehicle's registration region; either region within a person's scope
makes them visible, and whoever sees a case may act on it as their role allows."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.factories import CST, event, vehicle
from tests.integration.test_cases import PLATE, Loop

EVENTS = "/api/v1/remote-sensing/events"
JIANGYIN, BINHU, WUXI, SUZHOU = "320281", "320211", "320200", "320500"


@pytest.fixture()
def jiangyin(client: Any, login: Any, runner: Any, registry: Any) -> Loop:
    """The loop's people in 江阴, and a truck registered in 滨湖 (another 无锡 district)."""
    registry(vehicle(region=BINHU))
    return Loop(client, login, runner, region=JIANGYIN)


@pytest.fixture()
def police(login: Any) -> Any:
    """A police officer of a region, signed in once per test (signing in hashes a password: slow)."""
    signed_in: dict[str, dict[str, str]] = {}

    def _of(region: str) -> dict[str, str]:
        if region not in signed_in:
            signed_in[region] = login("police", region, username=f"police-{region}")
        return signed_in[region]

    return _of


def _remote_sensing_in_jiangyin(make_station: Any, drain: Any) -> None:
    station = make_station("RS281", region=JIANGYIN)
    now = datetime.now(CST)
    for n, hours in enumerate((3, 1)):
        r = station.post_json(EVENTS, event(f"RS281-{n}", at=now - timedelta(hours=hours),
                                            measurements={"no_ppm": 1800}))
        assert r.status_code == 202, r.get_json()
    drain()


def test_a_jiangyin_station_detects_a_binhu_truck_both_see_it(client, login, police, jiangyin, make_station, drain):
    _remote_sensing_in_jiangyin(make_station, drain)
    (violation,) = client.get("/api/v1/violations", headers=police(WUXI)).get_json()["items"]
    assert (violation["region"], violation["vehicle_region"]) == (JIANGYIN, BINHU)
    for region in (JIANGYIN, BINHU, WUXI, "320000"):
        reader = police(region)
        assert [v["id"] for v in client.get("/api/v1/violations", headers=reader).get_json()["items"]] == [
            violation["id"]], region
        assert client.get(f"/api/v1/violations/{violation['id']}", headers=reader).status_code == 200
        assert client.get(f"/api/v1/cases/{violation['case_id']}", headers=reader).status_code == 200
        assert [c["id"] for c in client.get("/api/v1/cases", headers=reader).get_json()["items"]] == [
            violation["case_id"]]
    for region in (SUZHOU, "320205"):  # neither where it was seen nor where it is registered
        reader = police(region)
        assert client.get("/api/v1/violations", headers=reader).get_json()["items"] == []
        assert client.get(f"/api/v1/violations/{violation['id']}", headers=reader).status_code == 404
        assert client.get(f"/api/v1/cases/{violation['case_id']}", headers=reader).status_code == 404
        assert client.get("/api/v1/cases", headers=reader).get_json()["items"] == []


def test_a_road_check_by_a_jiangyin_officer_runs_the_whole_loop_in_jiangyin(client, login, police, jiangyin):
    made = jiangyin.supervisory_test()
    assert made.status_code == 201 and made.get_json()["region"] == JIANGYIN
    case_id = made.get_json()["case_id"]
    case = jiangyin.case(case_id)  # 江阴 police read it
    assert case["region"] == BINHU and case["violations"][0]["region"] == JIANGYIN
    binhu = police(BINHU)
    assert client.get(f"/api/v1/cases/{case_id}", headers=binhu).status_code == 200
    # Every step, by the 江阴 people of each role: the case is theirs too.
    assert jiangyin.notice(case_id).status_code == 201
    pdf = client.get(f"/api/v1/cases/{case_id}/notice.pdf", headers=jiangyin.police)
    # Past the visibility check: the PDF, or the clear 503 of a machine without the font.
    assert pdf.status_code == 200 or pdf.get_json()["error"]["code"] == "notice_font_missing"
    assert client.get("/api/v1/cases/lookup", query_string={"plate": PLATE, "plate_color": "yellow"},
                      headers=jiangyin.repairer).status_code == 200
    assert jiangyin.penalty(case_id).status_code == 201
    assert jiangyin.repair().status_code == 201
    assert jiangyin.retest().status_code == 201
    assert jiangyin.case(case_id)["status"] == "closed"
    # Someone of neither region can do none of it.
    suzhou = police(SUZHOU)
    assert client.get(f"/api/v1/cases/{case_id}/notice.pdf", headers=suzhou).status_code == 404


def test_another_region_may_not_act_on_the_case(client, login, police, jiangyin):
    case_id = jiangyin.supervisory_test().get_json()["case_id"]
    officer = login("env_officer", SUZHOU, username="env-suzhou")
    assert client.post(f"/api/v1/cases/{case_id}/notices", json={}, headers=officer).status_code == 404
    r = client.post(f"/api/v1/cases/{case_id}/penalties", json={"decision_no": "D-9"},
                    headers=police(SUZHOU))
    assert r.status_code == 404


@pytest.mark.parametrize("region, found", [(JIANGYIN, True), (BINHU, True), (WUXI, True), ("320205", False)])
def test_the_region_filter_follows_the_same_rule(client, login, police, jiangyin, region, found):
    made = jiangyin.supervisory_test().get_json()
    province = police("320000")
    violations = client.get("/api/v1/violations", query_string={"region": region}, headers=province)
    cases = client.get("/api/v1/cases", query_string={"region": region}, headers=province)
    assert [v["id"] for v in violations.get_json()["items"]] == ([made["violation_id"]] if found else [])
    assert [c["id"] for c in cases.get_json()["items"]] == ([made["case_id"]] if found else [])


def test_exports_hold_what_the_reader_sees(client, login, police, jiangyin):
    jiangyin.supervisory_test()
    for region, rows in ((JIANGYIN, 1), (BINHU, 1), (SUZHOU, 0)):
        reader = police(region)
        for path in ("/api/v1/violations", "/api/v1/cases"):
            r = client.get(path, query_string={"format": "csv"}, headers=reader)
            assert r.status_code == 200
            assert len(list(csv.reader(io.StringIO(r.get_data(as_text=True))))) == 1 + rows, (region, path)


def test_the_detection_region_may_correct_the_violation(client, login, jiangyin, registry):
    registry(vehicle("苏B12346", region=BINHU))
    violation_id = jiangyin.supervisory_test().get_json()["violation_id"]
    body = {"plate": "苏B12346", "plate_color": "yellow", "reason": "图像复核"}
    suzhou = login("env_officer", SUZHOU, username="env-suzhou")
    assert client.post(f"/api/v1/violations/{violation_id}/correction", json=body, headers=suzhou).status_code == 404
    r = client.post(f"/api/v1/violations/{violation_id}/correction", json=body, headers=jiangyin.officer)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["violation"]["region"] == JIANGYIN  # where it was detected does not move


def test_the_figures_count_what_the_lists_show(client, login, police, jiangyin):
    jiangyin.supervisory_test()
    for region, n in ((JIANGYIN, 1), (BINHU, 1), (SUZHOU, 0)):
        reader = police(region)
        supervision = client.get("/api/v1/stats/supervision", headers=reader).get_json()
        assert supervision["violations_by_source"] == ({"road_check": 1} if n else {}), region
        enforcement = client.get("/api/v1/stats/enforcement", headers=reader).get_json()
        assert enforcement["cases"]["open"] == n, (region, enforcement)
