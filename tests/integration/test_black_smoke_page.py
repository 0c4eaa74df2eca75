"""The review page without a browser: sign-in rules, CSRF, scoping and error messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from core.registry import Vehicle
from enforcement.models import Violation
from remote_sensing.models import Snapshot
from tests.conftest import cli_json
from tests.factories import FLEET_CODE, vehicle
from tests.integration.test_black_smoke import jpeg, metadata, upload


@pytest.fixture()
def snapshot_id(app: Any, make_station: Any, drain: Any) -> int:
    smoke = make_station("BS001", kind="black_smoke")
    pk = upload(smoke, metadata("page"), [jpeg()]).get_json()["id"]
    drain()
    return pk


def person(runner: Any, username: str, role: str, region: str | None = "320200") -> None:
    args = ["users", "create", "--username", username, "--password", "pw-" + username, "--role", role]
    cli_json(runner, *args, *(["--region", region] if region else []))


def csrf(page: bytes) -> str:
    match = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1).decode()


def signed_in(app: Any, runner: Any, username: str, role: str = "env_officer", region: str | None = "320200") -> Any:
    person(runner, username, role, region)
    client = app.test_client()
    token = csrf(client.get("/review/login").data)
    r = client.post("/review/login", data={"username": username, "password": "pw-" + username, "csrf": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/review")
    return client


def test_people_must_sign_in(app, snapshot_id):
    client = app.test_client()
    for path in ("/review", f"/review/snapshots/{snapshot_id}/images/0"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/review/login")


def test_only_env_officers_and_admins_sign_in(app, runner):
    person(runner, "zhao", "police")
    client = app.test_client()
    token = csrf(client.get("/review/login").data)
    r = client.post("/review/login", data={"username": "zhao", "password": "pw-zhao", "csrf": token})
    assert r.status_code == 200 and "您不是生态环境部门审核人员" in r.get_data(as_text=True)
    assert client.get("/review").status_code == 302
    signed_in(app, runner, "root", "admin", None)


def test_posts_need_the_session_csrf_token(app, runner, snapshot_id):
    client = signed_in(app, runner, "li")
    r = client.post(f"/review/snapshots/{snapshot_id}", data={"decision": "reject"})
    assert r.status_code == 400
    r = client.post(f"/review/snapshots/{snapshot_id}", data={"decision": "reject", "csrf": "forged"})
    assert r.status_code == 400
    assert client.post("/review/login", data={"username": "li", "password": "pw-li"}).status_code == 400
    with app.extensions["lantian"].sessions() as s:
        assert s.get(Snapshot, snapshot_id).status == "pending_review"


def test_the_queue_shows_the_officers_region_only(app, runner, snapshot_id):
    here = signed_in(app, runner, "li").get("/review")
    assert f'id="snapshot-{snapshot_id}"'.encode() in here.data
    assert b'value="3"' in here.data  # the estimate, above the limit
    far = signed_in(app, runner, "chen", region="330100")
    assert "暂无待审核的抓拍。" in far.get("/review").get_data(as_text=True)
    assert far.get(f"/review/snapshots/{snapshot_id}/images/0").status_code == 404


def test_a_refused_review_is_shown_not_recorded(app, runner, snapshot_id):
    client = signed_in(app, runner, "li")
    token = csrf(client.get("/review").data)
    r = client.post(f"/review/snapshots/{snapshot_id}", data={"decision": "confirm", "ringelmann": "1", "csrf": token},
                    follow_redirects=True)
    assert f"抓拍 {snapshot_id}：只有高于限值的等级才能确认" in r.get_data(as_text=True)
    image = client.get(f"/review/snapshots/{snapshot_id}/images/0")
    assert image.status_code == 200 and image.data == jpeg() and image.mimetype == "image/jpeg"
    with app.extensions["lantian"].sessions() as s:
        assert s.get(Snapshot, snapshot_id).status == "pending_review"


def test_pages_are_in_chinese_by_default_and_in_english_on_request(app):
    client = app.test_client()
    assert "<h1>登录</h1>" in client.get("/review/login").get_data(as_text=True)  # no Accept-Language
    english = {"Accept-Language": "en-US,en;q=0.9"}
    assert "<h1>Sign in</h1>" in client.get("/review/login", headers=english).get_data(as_text=True)
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    assert "<h1>登录</h1>" in client.get("/review/login", headers=chinese).get_data(as_text=True)
    r = client.get("/review/login?lang=en", headers=chinese)  # chosen on the page, remembered
    assert "<h1>Sign in</h1>" in r.get_data(as_text=True) and "lang=en" in r.headers["Set-Cookie"]
    assert "<h1>Sign in</h1>" in client.get("/review/login", headers=chinese).get_data(as_text=True)
    assert "<h1>登录</h1>" in client.get("/review/login?lang=zh_CN").get_data(as_text=True)
    assert "<h1>登录</h1>" in client.get("/review/login?lang=klingon").get_data(as_text=True)


def set_estimate(app: Any, snapshot_id: int, **extra: Any) -> None:
    with app.extensions["lantian"].sessions() as s:
        row = s.get(Snapshot, snapshot_id)
        row.estimate = {**row.estimate, **extra}
        s.commit()


def test_each_snapshot_shows_local_time_station_vehicle_and_plume(app, runner, client, login, make_station, drain):
    from datetime import UTC, datetime

    admin = login("admin")
    client.put("/api/v1/registry/fleets", headers=admin,
               json={"fleets": [{"code": FLEET_CODE, "name": "锡运物流", "region": "320200"}]})
    client.put("/api/v1/registry/vehicles", headers=admin,
               json={"vehicles": [vehicle("苏B12345", fleet_code=FLEET_CODE)]})
    smoke = make_station("BS001", kind="black_smoke", name="锡山大道")
    at = datetime(2026, 12, 1, 18, 24, 7, tzinfo=UTC)
    known = upload(smoke, metadata("known", at=at), [jpeg(), jpeg(0.4)]).get_json()["id"]
    unknown = upload(smoke, metadata("unknown", plate="苏B99999"), [jpeg(0.3)]).get_json()["id"]
    drain()
    set_estimate(app, known, plume={"image": 1, "polygon": [[100, 120], [300, 110.5], [280, 300]],
                                    "bbox": [100, 110, 200, 190]})
    set_estimate(app, unknown, plume={"image": 0, "bbox": [10, 20, 30, 40]})

    page = signed_in(app, runner, "li").get("/review").get_data(as_text=True)
    card = page[page.index(f'id="snapshot-{known}"'):page.index(f'id="snapshot-{unknown}"')]
    assert "2026-12-02 02:24:07 (中国标准时间)" in card  # 18:24:07 UTC, in LANTIAN_TIMEZONE
    assert "BS001 锡山大道" in card and '<dd class="lane">2</dd>' in card and '<dd class="camera">3</dd>' in card
    assert "已登记 · 柴油 · 所属企业 锡运物流 (" + FLEET_CODE + ")" in card
    assert card.count("<svg") == 1  # only on the image the plume was found in
    assert 'viewBox="0 0 640 360"' in card and '<polygon points="100,120 300,110.5 280,300"/>' in card
    rest = page[page.index(f'id="snapshot-{unknown}"'):]
    assert "尚未在车辆登记库中" in rest and '<rect x="10.0" y="20.0" width="30.0" height="40.0"/>' in rest

    english = app.test_client()
    english.get("/review/login?lang=en")
    token = csrf(english.get("/review/login").data)
    english.post("/review/login", data={"username": "li", "password": "pw-li", "csrf": token})
    text = english.get("/review").get_data(as_text=True)
    assert "2026-12-02 02:24:07 (China Standard Time)" in text and "registered · diesel · fleet 锡运物流" in text


def test_a_snapshot_without_a_plume_has_no_outline(app, runner, snapshot_id):
    set_estimate(app, snapshot_id, plume=None)
    page = signed_in(app, runner, "li").get("/review").get_data(as_text=True)
    assert f'id="snapshot-{snapshot_id}"' in page and "<svg" not in page
    set_estimate(app, snapshot_id, plume={"image": 5, "polygon": [[1, 2], [3, 4], [5, 6]]})  # no such image
    assert "<svg" not in signed_in(app, runner, "wang").get("/review").get_data(as_text=True)


def test_the_officer_corrects_the_plate_when_confirming(app, runner, client, login, snapshot_id):
    client.put("/api/v1/registry/vehicles", headers=login("admin"), json={"vehicles": [vehicle("苏B54321")]})
    officer = signed_in(app, runner, "li")
    token = csrf(officer.get("/review").data)
    form = {"decision": "confirm", "ringelmann": "3", "csrf": token, "plate": "苏B54321", "plate_color": "pink"}
    assert officer.post(f"/review/snapshots/{snapshot_id}", data=form).status_code == 400
    with app.extensions["lantian"].sessions() as s:
        assert s.get(Snapshot, snapshot_id).status == "pending_review"
    r = officer.post(f"/review/snapshots/{snapshot_id}", data={**form, "plate_color": "yellow"}, follow_redirects=True)
    assert f"抓拍 {snapshot_id} 已确认为林格曼 3 级" in r.get_data(as_text=True)
    with app.extensions["lantian"].sessions() as s:
        violation = s.scalars(select(Violation)).one()
        assert s.get(Vehicle, violation.vehicle_id).plate == "苏B54321"  # not the camera's 苏B12345


def test_an_empty_correction_keeps_the_plate_read(app, runner, snapshot_id):
    officer = signed_in(app, runner, "li")
    token = csrf(officer.get("/review").data)
    officer.post(f"/review/snapshots/{snapshot_id}",
                 data={"decision": "confirm", "ringelmann": "3", "csrf": token, "plate": " ", "plate_color": ""})
    with app.extensions["lantian"].sessions() as s:
        violation = s.scalars(select(Violation)).one()
        assert s.get(Vehicle, violation.vehicle_id).plate == "苏B12345"


def test_the_reviewed_tab_shows_who_decided_what_and_when(app, runner, make_station, drain):
    smoke = make_station("BS001", kind="black_smoke")
    first = upload(smoke, metadata("first"), [jpeg()]).get_json()["id"]
    second = upload(smoke, metadata("second", plate="苏B22222"), [jpeg(0.3)]).get_json()["id"]
    far = upload(make_station("BS900", kind="black_smoke", region="330100"), metadata("far"), [jpeg()]).get_json()["id"]
    drain()
    officer = signed_in(app, runner, "li")
    assert "尚无审核记录。" in officer.get("/review/reviewed").get_data(as_text=True)
    token = csrf(officer.get("/review").data)
    officer.post(f"/review/snapshots/{first}", data={"decision": "confirm", "ringelmann": "4", "csrf": token,
                                                     "note": "浓烟"})
    officer.post(f"/review/snapshots/{second}", data={"decision": "reject", "csrf": token})
    signed_in(app, runner, "chen", region="330100").post(  # another region's decision
        f"/review/snapshots/{far}", data={"decision": "reject", "csrf": "x"})

    page = officer.get("/review/reviewed").get_data(as_text=True)
    assert page.index(f'id="snapshot-{second}"') < page.index(f'id="snapshot-{first}"')  # latest first
    assert f'id="snapshot-{far}"' not in page
    confirmed = page[page.index(f'id="snapshot-{first}"'):]
    assert "已确认：林格曼 4 级" in confirmed and '<span class="reviewer">li</span>' in confirmed
    assert '<span class="note">浓烟</span>' in confirmed and "违法记录" in confirmed
    assert re.search(r'<span class="reviewed-at">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(中国标准时间\)</span>', confirmed)
    assert "已驳回" in page[page.index(f'id="snapshot-{second}"'):page.index(f'id="snapshot-{first}"')]


def test_pages_carry_no_inline_script_or_style(app, runner, snapshot_id):
    officer = signed_in(app, runner, "li")
    for path in ("/review", "/review/reviewed", "/review/login"):
        html = officer.get(path).get_data(as_text=True)
        assert "<style" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert not re.search(r"\s(style|on[a-z]+)=", html), path
    for name in ("console.js", "console.css"):
        assert officer.get(f"/console/static/{name}").status_code == 200
