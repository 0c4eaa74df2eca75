"""The review page without a browser: sign-in rules, CSRF, scoping and error messages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from remote_sensing.models import Snapshot
from tests.conftest import cli_json
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
    assert r.status_code == 200 and b"not an environment officer" in r.data
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
    assert b"Nothing waits for review." in far.get("/review").data
    assert far.get(f"/review/snapshots/{snapshot_id}/images/0").status_code == 404


def test_a_refused_review_is_shown_not_recorded(app, runner, snapshot_id):
    client = signed_in(app, runner, "li")
    token = csrf(client.get("/review").data)
    r = client.post(f"/review/snapshots/{snapshot_id}", data={"decision": "confirm", "ringelmann": "1", "csrf": token},
                    follow_redirects=True)
    assert "only a level above the limit can be confirmed" in r.get_data(as_text=True)
    image = client.get(f"/review/snapshots/{snapshot_id}/images/0")
    assert image.status_code == 200 and image.data == jpeg() and image.mimetype == "image/jpeg"
    with app.extensions["lantian"].sessions() as s:
        assert s.get(Snapshot, snapshot_id).status == "pending_review"
