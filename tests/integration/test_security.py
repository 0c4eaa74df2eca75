"""Issue 13: keys, people and tokens, sign-in throttling, station-facing refusals, input bounds,
page headers and logs; each test reproduces what an attacker or a confused client did."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from core import keys, logs
from core.identity import Station
from core.settings import Settings
from lantian.cli import cli
from tests.conftest import cli_json
from tests.factories import event, vehicle
from tests.integration.test_black_smoke_page import csrf, signed_in
from tests.integration.test_cases import Loop

EVENTS = "/api/v1/remote-sensing/events"
TOKEN = "/api/v1/auth/token"
CASES = "/api/v1/cases"


def error(r) -> dict:
    return r.get_json()["error"]


def token(client, username, password) -> dict:
    r = client.post(TOKEN, json={"username": username, "password": password})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": "Bearer " + r.get_json()["access_token"]}


def signed(station, body: bytes, at: float) -> dict:
    return station.headers("POST", EVENTS, body, at=at)


# --- keys --------------------------------------------------------------------------------


def test_missing_keys_are_generated_once_into_the_instance_folder(tmp_path):
    bare = Settings(instance_dir=str(tmp_path / "inst"), secret_key=None, station_key_encryption_key=None)
    first, again = keys.resolved(bare), keys.resolved(bare)
    assert first.secret_key and len(first.secret_key) >= 48 and first.secret_key == again.secret_key
    assert first.station_key_encryption_key == again.station_key_encryption_key
    for name in (keys.SECRET_KEY_FILE, keys.STATION_KEY_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / "inst" / name).st_mode) == 0o600
    other = keys.resolved(Settings(instance_dir=str(tmp_path / "other"), secret_key=None))
    assert other.secret_key != first.secret_key  # per instance, never a shared default


def test_processes_starting_side_by_side_agree_on_one_generated_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        got = set(pool.map(lambda n: keys.instance_key(str(tmp_path), "k", f"key-{n}"), range(32)))
    assert len(got) == 1 and os.listdir(tmp_path) == ["k"]  # and never an empty key read mid-write


def test_production_refuses_to_start_without_keys(tmp_path):
    from lantian.app import create_app

    for missing in ({"secret_key": None}, {"station_key_encryption_key": None}):
        given = {"secret_key": "k" * 40, "station_key_encryption_key": "e" * 40} | missing
        with pytest.raises(keys.MissingKey, match="LANTIAN_ENV=production"):
            create_app(Settings(env="production", instance_dir=str(tmp_path), **given))
    assert not os.listdir(tmp_path)  # nothing generated in production


def test_station_secrets_are_sealed_at_rest_and_rotation_stops_the_old_one(app, runner, station):
    with app.extensions["lantian"].sessions() as s:
        stored = s.scalar(select(Station.secret))
    assert station.secret not in stored and app.extensions["lantian"].station_box.open(stored) == station.secret
    assert station.post_json(EVENTS, event("before")).status_code == 202
    rotated = cli_json(runner, "stations", "rotate-secret", "--code", "RS001")
    assert set(rotated) == {"code", "key_id", "secret"} and rotated["secret"] != station.secret
    r = station.post_json(EVENTS, event("old-key"))
    assert r.status_code == 401 and error(r)["code"] == "unknown_key"
    station.key_id, station.secret = rotated["key_id"], rotated["secret"]
    assert station.post_json(EVENTS, event("after")).status_code == 202
    listed = runner.invoke(cli, ["stations", "list"]).output
    assert json.loads(listed.splitlines()[0])["key_id"] == rotated["key_id"] and rotated["secret"] not in listed


def test_reseal_under_a_new_encryption_key_keeps_stations_signing(app, settings, runner, station):
    from lantian.app import create_app

    newer = create_app(settings.model_copy(update={
        "station_key_encryption_key": "a-newer-key," + settings.station_key_encryption_key}))
    assert newer.test_cli_runner().invoke(cli, ["stations", "reseal"]).exit_code == 0
    station.client = newer.test_client()
    assert station.post_json(EVENTS, event("resealed")).status_code == 202
    # The old key alone no longer opens it: the retired key can go.
    station.client = create_app(settings.model_copy(update={"station_key_encryption_key": "other"})).test_client()
    assert station.post_json(EVENTS, event("retired")).status_code == 401


# --- people and tokens -------------------------------------------------------------------


@pytest.fixture()
def officer(runner):
    cli_json(runner, "users", "create", "--username", "wang", "--password", "first-pw", "--role", "police",
             "--region", "320200")
    return "wang"


def test_deactivation_ends_tokens_at_once_and_activation_does_not_revive_them(client, runner, officer):
    old = token(client, officer, "first-pw")
    assert client.get("/api/v1/violations", headers=old).status_code == 200
    assert cli_json(runner, "users", "deactivate", "--username", officer)["active"] is False
    r = client.get("/api/v1/violations", headers=old)
    assert r.status_code == 401 and error(r)["code"] == "invalid_token"
    assert client.post(TOKEN, json={"username": officer, "password": "first-pw"}).status_code == 401
    cli_json(runner, "users", "activate", "--username", officer)
    assert client.get("/api/v1/violations", headers=old).status_code == 401
    assert client.get("/api/v1/violations", headers=token(client, officer, "first-pw")).status_code == 200


def test_role_and_region_changes_end_older_tokens_and_the_new_role_applies(client, runner, officer):
    old = token(client, officer, "first-pw")
    changed = cli_json(runner, "users", "set-role", "--username", officer, "--role", "transport", "--region", "320281")
    assert (changed["role"], changed["region"]) == ("transport", "320281")
    assert client.get("/api/v1/violations", headers=old).status_code == 401
    new = token(client, officer, "first-pw")
    assert client.post(CASES + "/1/penalties", json={"waived": True, "reason": "x"}, headers=new).status_code == 403


def test_set_password_reads_standard_input_and_ends_older_tokens(client, runner, officer):
    old = token(client, officer, "first-pw")
    result = runner.invoke(cli, ["users", "set-password", "--username", officer], input="second-pw\n")
    assert result.exit_code == 0, result.output
    assert "second-pw" not in result.output
    assert client.get("/api/v1/violations", headers=old).status_code == 401
    assert client.post(TOKEN, json={"username": officer, "password": "first-pw"}).status_code == 401
    token(client, officer, "second-pw")


def test_a_deleted_user_token_is_refused_and_users_list_shows_no_hash(app, client, runner, officer):
    from core.identity import User

    old = token(client, officer, "first-pw")
    listed = runner.invoke(cli, ["users", "list"]).output
    assert json.loads(listed.splitlines()[0])["username"] == officer and "argon2" not in listed
    with app.extensions["lantian"].sessions() as s, s.begin():
        s.execute(update(User).values(username="gone", active=False))
    assert client.get("/api/v1/violations", headers=old).status_code == 401


# --- sign-in throttling ------------------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password_until_the_window_passes(client, officer):
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(4):
            assert client.post(TOKEN, json={"username": officer, "password": "guess"}).status_code == 401
        token(client, officer, "first-pw")  # four failures: still open
        assert client.post(TOKEN, json={"username": officer, "password": "guess"}).status_code == 401
        r = client.post(TOKEN, json={"username": officer, "password": "first-pw"})
        assert r.status_code == 429 and error(r)["code"] == "too_many_attempts"
        assert r.headers["Retry-After"] == str(15 * 60)
        clock.shift(timedelta(minutes=15) - timedelta(seconds=1))
        r = client.post(TOKEN, json={"username": officer, "password": "first-pw"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        clock.shift(timedelta(seconds=1))
        token(client, officer, "first-pw")


def test_failures_from_one_address_lock_that_address_across_usernames(settings, runner):
    from lantian.app import create_app

    app = create_app(settings.model_copy(update={"signin_max_failures_per_address": 3}))
    client = app.test_client()
    for name in ("a", "b", "c"):
        assert client.post(TOKEN, json={"username": name, "password": "x"}).status_code == 401
    r = client.post(TOKEN, json={"username": "d", "password": "x"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    other = client.post(TOKEN, json={"username": "d", "password": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401


# --- station-facing refusals (issue 16's messages) ---------------------------------------


@pytest.mark.parametrize("skew, ok", [(-300, True), (300, True), (-301, False), (301, False)])
def test_clock_skew_is_symmetric_at_the_edge(app, station, skew, ok):
    now = 1_764_620_000
    with time_machine.travel(datetime.fromtimestamp(now + 0.9, UTC), tick=False):
        body = json.dumps(event(f"skew{skew}", at=datetime.fromtimestamp(now - 60, UTC))).encode()
        r = station.client.post(EVENTS, data=body, headers=signed(station, body, now + skew),
                                content_type="application/json")
    assert r.status_code == (202 if ok else 401), r.get_json()
    if not ok:
        assert "server time 1764620000" in error(r)["message"]


def test_a_millisecond_timestamp_is_named_as_such(station):
    body = json.dumps(event("ms")).encode()
    r = station.client.post(EVENTS, data=body, headers=signed(station, body, time.time() * 1000),
                            content_type="application/json")
    assert r.status_code == 401 and error(r)["code"] == "stale_timestamp"
    assert "milliseconds" in error(r)["message"] and "unix seconds" in error(r)["message"]


def test_an_unknown_key_is_named(station):
    station.key_id = "k_nobody"
    r = station.post_json(EVENTS, event("x"))
    assert r.status_code == 401 and error(r)["code"] == "unknown_key"


def test_a_time_without_offset_asks_for_one(station):
    r = station.post_json(EVENTS, event("naive", measured_at="2026-11-22T08:15:30"))
    assert r.status_code == 422
    message = error(r)["fields"]["measured_at"][0]
    assert "offset" in message and "+08:00" in message and "aware" not in message


def test_the_413_names_the_limit_and_the_batch_endpoint(station):
    r = station.request("POST", EVENTS, b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413 and error(r)["code"] == "body_too_large"
    assert "1 MiB" in error(r)["message"] and "/api/v1/remote-sensing/events/batch" in error(r)["message"]


def test_the_signature_covers_the_path_as_sent_not_decoded(station):
    raw = "/api/v1/remote-sensing/events/1%30"  # decodes to .../events/10
    ts = str(int(time.time()))
    from core import identity

    for path, status in ((raw, 404), ("/api/v1/remote-sensing/events/10", 401)):
        headers = {"X-Station-Key": station.key_id, "X-Timestamp": ts,
                   "X-Signature": identity.sign(station.secret, "GET", path, ts, b"")}
        assert station.client.get(raw, headers=headers).status_code == status, path


def test_another_stations_event_answers_like_a_missing_one(make_station):
    first, second = make_station("RS001"), make_station("RS002")
    pk = first.post_json(EVENTS, event("mine")).get_json()["id"]
    theirs, missing = second.get(f"{EVENTS}/{pk}"), second.get(f"{EVENTS}/{pk + 1000}")
    assert theirs.status_code == missing.status_code == 404
    assert error(theirs) == error(missing)


def test_a_suspended_station_hears_403_before_any_422(runner, station):
    assert station.post_json(EVENTS, event("remembered")).status_code == 202
    cli_json(runner, "stations", "suspend", "--code", "RS001")
    r = station.post_json(EVENTS, {"event_id": "bad"})
    assert r.status_code == 403 and error(r)["code"] == "station_suspended"


# --- input bounds ------------------------------------------------------------------------


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return {"events": value} if depth else value


def test_json_nested_deeper_than_32_is_400_and_a_batch_is_refused_whole(station):
    deep = json.dumps(event("deep", extra=nested(31)))  # the event object is level 1, `extra` 2..32
    assert station.request("POST", EVENTS, deep.encode()).status_code == 202
    deeper = json.dumps(event("deeper", extra=nested(32)))
    r = station.request("POST", EVENTS, deeper.encode())
    assert r.status_code == 400 and error(r)["code"] == "too_deep"
    batch = '{"events": [' + json.dumps(event("fine")) + "," + deeper + "]}"
    r = station.request("POST", EVENTS + "/batch", batch.encode())
    assert r.status_code == 400 and error(r)["code"] == "too_deep"
    assert station.request("POST", EVENTS, b"[" * 100_000).status_code == 400  # never a RecursionError


def test_codes_are_ascii_and_patterns_match_whole(client, login):
    transport = login("transport")
    url = "/api/v1/registry/vehicles"
    for bad in ({"category": "N3\n"}, {"region": "３２０２００"}, {"region": "320200\n"},
                {"vin": "LZZ1CLVB8KA123456\n"}):
        r = client.put(url, json={"vehicles": [vehicle(**bad)]}, headers=transport)
        assert r.status_code == 422, bad
        assert list(error(r)["fields"]["vehicles"]["0"]) == list(bad), error(r)
    assert client.put(url, json={"vehicles": [vehicle()]}, headers=transport).status_code == 200


def test_control_characters_are_refused_in_text_fields(client, login):
    from tests.factories import FLEET_CODE

    transport = login("transport")
    r = client.put("/api/v1/registry/fleets", json={"fleets": [{"code": FLEET_CODE, "name": "运输\x1b[2J公司",
                                                                "region": "320200"}]}, headers=transport)
    assert r.status_code == 422 and "name" in error(r)["fields"]["fleets"]["0"]


def test_penalty_amounts_are_bounded_by_the_policy(app, client, login, runner):
    loop = Loop(client, login, runner)
    case_id = loop.open_case()
    ceiling = app.extensions["lantian"].settings.policy.penalty_max_yuan
    for amount in (ceiling + 1, 2**31, 2**63):
        r = loop.penalty(case_id, amount_yuan=amount)
        assert r.status_code == 422 and "amount_yuan" in error(r)["fields"], (amount, r.get_json())
    assert loop.penalty(case_id, amount_yuan=ceiling).status_code == 201


def test_a_non_ascii_digit_ringelmann_on_the_review_form_is_a_400(app, runner):
    officer = signed_in(app, runner, "officer")
    token_ = csrf(officer.get("/review").data)
    r = officer.post("/review/snapshots/1", data={"decision": "confirm", "ringelmann": "²", "csrf": token_})
    assert r.status_code == 400


# --- pages and exports -------------------------------------------------------------------


def test_pages_send_csp_and_anti_framing_and_the_cookie_is_lax_httponly(app, runner):
    page = app.test_client().get("/review/login")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in \
        csp.split("script-src")[1].split(";")[0]
    assert page.headers["X-Frame-Options"] == "DENY"
    client = app.test_client()
    cli_json(runner, "users", "create", "--username", "li", "--password", "pw-li", "--role", "env_officer")
    r = client.post("/review/login", data={"username": "li", "password": "pw-li",
                                           "csrf": csrf(client.get("/review/login").data)})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_cookie_is_secure_when_served_over_https(settings):
    from lantian.app import create_app

    app = create_app(settings.model_copy(update={"cookie_secure": True}))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_csv_cells_that_would_run_as_formulas_are_prefixed():
    from core.spreadsheets import safe_cell

    assert [safe_cell(v) for v in ("=HYPERLINK(\"x\")", "+1+1", "-2", "@SUM(A1)", "-3.5e2", "苏B12345", 7)] == [
        "'=HYPERLINK(\"x\")", "'+1+1", "-2", "'@SUM(A1)", "-3.5e2", "苏B12345", 7]


# --- logs --------------------------------------------------------------------------------


def test_a_request_log_line_is_json_with_the_plate_masked(app, client, login):
    police = login("police", username="zhao")
    out = io.StringIO()
    logs.install(out)
    try:
        r = client.get("/api/v1/vehicles/苏B12345?plate_color=yellow", headers={**police, "X-Request-ID": "req-1"})
    finally:
        logs.install()
    assert r.headers["X-Request-ID"] == "req-1"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    line = next(x for x in lines if x.get("event") == "request")
    assert line["request_id"] == "req-1" and line["user"] == "zhao" and line["status"] == r.status_code
    assert line["duration_ms"] >= 0 and line["method"] == "GET"
    assert "苏B12345" not in out.getvalue() and "苏B****5" in line["path"]


def test_masking_covers_vins_names_and_free_text():
    masked = logs.mask_personal(None, "info", {"event": "matched 苏B12345 to LZZ1CLVB8KA123456", "name": "张三",
                                               "plate": "苏B12345", "station": "RS001"})
    assert masked == {"event": "matched 苏B****5 to " + "*" * 17, "name": "**", "plate": "苏B****5",
                      "station": "RS001"}
