"""Every failure a station can produce gets its documented 4xx, and nothing stored changes."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core.identity import Station
from remote_sensing.models import Event
from tests.factories import CST, event

EVENTS = "/api/v1/remote-sensing/events"


def snapshot(app) -> list[tuple]:
    with app.extensions["lantian"].sessions() as s:
        return [tuple(r) for r in s.execute(select(Event.id, Event.event_id, Event.body_hash).order_by(Event.id))]


@pytest.fixture()
def stored(app, station):
    """One event already stored, so each test can check it survives the bad request."""
    assert station.post_json(EVENTS, event("kept")).status_code == 202
    return snapshot(app)


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return body["error"]


# --- signatures --------------------------------------------------------------------------


def test_no_signature_headers_401(app, client, stored):
    r = client.post(EVENTS, json=event())
    assert r.status_code == 401 and error_of(r)["code"] == "signature_required"
    assert snapshot(app) == stored


def test_wrong_secret_401(app, station, stored):
    body = json.dumps(event("x1")).encode()
    headers = station.headers("POST", EVENTS, body)
    headers["X-Signature"] = "0" * 64
    r = station.client.post(EVENTS, data=body, headers=headers, content_type="application/json")
    assert r.status_code == 401 and error_of(r)["code"] == "bad_signature"
    assert snapshot(app) == stored


def test_unknown_key_401(app, station, stored):
    body = json.dumps(event("x1")).encode()
    headers = station.headers("POST", EVENTS, body)
    headers["X-Station-Key"] = "k_nobody"
    r = station.client.post(EVENTS, data=body, headers=headers, content_type="application/json")
    assert r.status_code == 401
    assert snapshot(app) == stored


def test_body_changed_after_signing_401(app, station, stored):
    body = json.dumps(event("x1")).encode()
    headers = station.headers("POST", EVENTS, body)
    tampered = json.dumps(event("x1", speed_kmh=10.0)).encode()
    r = station.client.post(EVENTS, data=tampered, headers=headers, content_type="application/json")
    assert r.status_code == 401
    assert snapshot(app) == stored


def test_path_is_part_of_the_signature(app, station, stored):
    body = json.dumps(event("x1")).encode()
    headers = station.headers("POST", EVENTS + "/batch", body)
    r = station.client.post(EVENTS, data=body, headers=headers, content_type="application/json")
    assert r.status_code == 401


@pytest.mark.parametrize("skew, ok", [(-298, True), (298, True), (-303, False), (303, False)])
def test_clock_window_300_s(app, station, skew, ok):
    body = json.dumps(event(f"skew{skew}")).encode()
    headers = station.headers("POST", EVENTS, body, at=time.time() + skew)
    r = station.client.post(EVENTS, data=body, headers=headers, content_type="application/json")
    if ok:
        assert r.status_code == 202
    else:
        assert r.status_code == 401 and error_of(r)["code"] == "stale_timestamp"


def test_non_numeric_timestamp_401(app, station):
    body = json.dumps(event()).encode()
    headers = station.headers("POST", EVENTS, body)
    headers["X-Timestamp"] = "yesterday"
    assert station.client.post(EVENTS, data=body, headers=headers).status_code == 401


def test_suspended_station_403_then_resumed(app, station, runner, stored):
    from tests.conftest import cli_json

    cli_json(runner, "stations", "suspend", "--code", "RS001")
    r = station.post_json(EVENTS, event("during-suspension"))
    assert r.status_code == 403 and error_of(r)["code"] == "station_suspended"
    assert snapshot(app) == stored
    cli_json(runner, "stations", "resume", "--code", "RS001")
    assert station.post_json(EVENTS, event("after")).status_code == 202


def test_a_secret_changed_elsewhere_takes_effect_at_once(app, station, stored):
    """This process remembers the credentials it read (on PostgreSQL its hottest route does not
    read the station again); a secret changed by another process must still win at once."""
    with app.extensions["lantian"].sessions() as s, s.begin():
        sealed = app.extensions["lantian"].station_box.seal("rotated-secret")
        s.execute(update(Station).where(Station.key_id == station.key_id).values(secret=sealed))
    r = station.post_json(EVENTS, event("old-secret"))
    assert r.status_code == 401 and error_of(r)["code"] == "bad_signature"
    assert snapshot(app) == stored
    station.secret = "rotated-secret"
    body = event("new-secret")
    assert station.post_json(EVENTS, body).status_code == 202
    assert station.post_json(EVENTS, body).status_code == 200


def test_black_smoke_station_cannot_post_events(app, make_station):
    camera = make_station("BS001", kind="black_smoke")
    assert camera.post_json(EVENTS, event()).status_code == 403


def test_station_reads_only_its_own_events(app, make_station, station):
    other = make_station("RS002")
    created = station.post_json(EVENTS, event()).get_json()["id"]
    assert other.get(f"{EVENTS}/{created}").status_code == 404  # as a missing one: not probed
    assert station.get(f"{EVENTS}/{created}").status_code == 200
    assert station.get(f"{EVENTS}/{created + 999}").status_code == 404


# --- bodies ------------------------------------------------------------------------------


def test_malformed_json_400(app, station, stored):
    r = station.request("POST", EVENTS, b'{"event_id": "x", ')
    assert r.status_code == 400 and error_of(r)["code"] == "malformed_json"
    assert snapshot(app) == stored


def test_not_utf8_400(app, station, stored):
    r = station.request("POST", EVENTS, b"\xff\xfe{}")
    assert r.status_code == 400
    assert snapshot(app) == stored


def test_body_over_1_mib_413(app, station, stored):
    body = json.dumps({**event("big"), "padding": "x" * (1024 * 1024)}).encode()
    r = station.request("POST", EVENTS, body)
    assert r.status_code == 413
    assert snapshot(app) == stored


def test_json_array_is_422(app, station, stored):
    r = station.post_json(EVENTS, [event()])
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    assert snapshot(app) == stored


def test_content_type_is_not_required(app, station):
    body = json.dumps(event("plain")).encode()
    assert station.request("POST", EVENTS, body, content_type="text/plain").status_code == 202


def _bad(**changes):
    body = event("bad")
    for path, value in changes.items():
        target = body
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            target.pop(keys[-1])
        else:
            target[keys[-1]] = value
    return body


BAD_BODIES = {
    "missing event_id": (_bad(event_id=KeyError), ["event_id"]),
    "empty event_id": (_bad(event_id=""), ["event_id"]),
    "event_id with spaces": (_bad(event_id="RS 1"), ["event_id"]),
    "missing measured_at": (_bad(measured_at=KeyError), ["measured_at"]),
    "naive measured_at": (_bad(measured_at="2026-11-22T08:15:30"), ["measured_at"]),
    "garbage measured_at": (_bad(measured_at="yesterday"), ["measured_at"]),
    "future measured_at": (_bad(measured_at="{six minutes ahead}"), ["measured_at"]),
    "missing plate": (_bad(plate=KeyError), ["plate"]),
    "unknown colour": (_bad(plate__color="purple"), ["plate"]),
    "confidence over 1": (_bad(plate__confidence=1.2), ["plate"]),
    "negative speed": (_bad(speed_kmh=-1), ["speed_kmh"]),
    "speed as string": (_bad(speed_kmh="42.5"), ["speed_kmh"]),
    "speed as bool": (_bad(speed_kmh=True), ["speed_kmh"]),
    "speed null": (_bad(speed_kmh=None), ["speed_kmh"]),
    "missing acceleration": (_bad(acceleration_ms2=KeyError), ["acceleration_ms2"]),
    "negative NO": (_bad(measurements__no_ppm=-5), ["measurements"]),
    "opacity over 100": (_bad(measurements__opacity_pct=130), ["measurements"]),
    "ringelmann 6": (_bad(measurements__ringelmann=6), ["measurements"]),
    "ringelmann fractional": (_bad(measurements__ringelmann=1.5), ["measurements"]),
    "no measurements": (_bad(measurements={}), ["measurements"]),
    "humidity over 100": (_bad(conditions__humidity_pct=140), ["conditions"]),
    "lane 0": (_bad(lane=0), ["lane"]),
    "unknown fuel": (_bad(fuel_type_observed="coal"), ["fuel_type_observed"]),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_body_422_with_fields(app, station, stored, name):
    body, fields = BAD_BODIES[name]
    if body.get("measured_at") == "{six minutes ahead}":  # computed now: the suite may run for minutes
        body = {**body, "measured_at": (datetime.now(CST) + timedelta(minutes=6)).isoformat()}
    r = station.post_json(EVENTS, body)
    assert r.status_code == 422, r.get_json()
    err = error_of(r)
    assert err["code"] == "validation_error"
    assert set(fields) <= set(err["fields"]), err
    assert snapshot(app) == stored


def test_exactly_5_minutes_ahead_is_accepted(app, station):
    body = event("edge", at=datetime.now(CST) + timedelta(seconds=295))
    assert station.post_json(EVENTS, body).status_code == 202


def test_bad_event_does_not_block_a_batch(app, station):
    r = station.post_json(EVENTS + "/batch", {"events": [event("ok1"), "not an object", {}, event("ok2")]})
    assert r.status_code == 200
    assert [x["status"] for x in r.get_json()["results"]] == ["received", "invalid", "invalid", "received"]


def test_batch_over_500_is_422_and_stores_nothing(app, station):
    r = station.post_json(EVENTS + "/batch", {"events": [event(f"e{i}") for i in range(501)]})
    assert r.status_code == 422
    with app.extensions["lantian"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 0


@pytest.mark.parametrize("body", [{}, {"events": []}, {"events": "x"}, []])
def test_batch_shape_errors_422(app, station, body):
    assert station.post_json(EVENTS + "/batch", body).status_code == 422


def test_nul_characters_are_refused_not_stored(app, station, stored, client):
    body = event("nul")
    body["plate"]["number"] = "苏B\u000012345"
    r = station.post_json(EVENTS, body)
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    batch = station.post_json(EVENTS + "/batch", {"events": [body, event("fine")]})
    assert [x["status"] for x in batch.get_json()["results"]] == ["invalid", "received"]
    assert snapshot(app)[:-1] == stored
    assert client.post("/api/v1/auth/token", json={"username": "a\u0000b", "password": "x"}).status_code == 422
    assert client.get("/api/v1/vehicles/%E8%8B%8FB%0012345").status_code == 400
    assert client.get("/api/v1/violations?plate=%00").status_code == 400


def test_lone_surrogates_are_refused_not_stored(app, station, stored):
    """JSON can spell a lone UTF-16 surrogate (\\ud800): no database can store it as text."""
    raw = json.dumps(event("surrogate", plate="苏B1234X")).replace("1234X", "1234\\ud800")
    r = station.request("POST", EVENTS, raw.encode())
    assert r.status_code == 422 and "surrogate" in error_of(r)["fields"]["_schema"][0]
    unknown_field = json.dumps({**event("surrogate2"), "note": "x"}).replace('"x"', '"\\udc00"')
    assert station.request("POST", EVENTS, unknown_field.encode()).status_code == 422
    batch = '{"events": [' + raw + ", " + json.dumps(event("fine")) + "]}"
    results = station.request("POST", EVENTS + "/batch", batch.encode()).get_json()["results"]
    assert [x["status"] for x in results] == ["invalid", "received"]
    # Unescaped, too: Python's parser decodes UTF-8 with "surrogatepass", and takes UTF-16.
    raw_bytes = json.dumps(event("surrogate3", plate="苏B1234X"), ensure_ascii=False).encode()
    raw_bytes = raw_bytes.replace(b"1234X", b"1234\xed\xa0\x80")
    assert station.request("POST", EVENTS, raw_bytes).status_code == 422
    batch_bytes = b'{"events": [' + raw_bytes + b"]}"
    results = station.request("POST", EVENTS + "/batch", batch_bytes).get_json()["results"]
    assert [x["status"] for x in results] == ["invalid"]
    assert station.request("POST", EVENTS, raw.encode("utf-16")).status_code == 422
    assert snapshot(app)[:-1] == stored


def test_nan_and_infinity_are_not_json(station, stored, app):
    """Python's parser takes NaN and Infinity; JSON (RFC 8259) and PostgreSQL do not."""
    extra = json.dumps({**event("nan"), "firmware_note": 1.5}).replace("1.5", "NaN")
    for raw in (extra, '{"events": [' + extra + "]}"):
        path = EVENTS if raw is extra else EVENTS + "/batch"
        r = station.request("POST", path, raw.encode())
        assert r.status_code == 400 and error_of(r)["code"] == "malformed_json"
    speed = json.dumps(event("inf")).replace('"speed_kmh": 42.5', '"speed_kmh": Infinity')
    assert station.request("POST", EVENTS, speed.encode()).status_code == 400
    assert snapshot(app) == stored


def test_a_number_beyond_a_double_is_422_and_a_long_integer_is_kept(station, stored, app):
    """JSON allows 1e400, which no double holds (it became inf, and PostgreSQL refused it: a 500)."""
    huge = json.dumps({**event("huge"), "firmware_note": 1.5}).replace("1.5", "-1e400")
    for raw in (huge, '{"events": [' + huge + "]}"):
        r = station.request("POST", EVENTS if raw is huge else EVENTS + "/batch", raw.encode())
        assert r.status_code == 422 and "range of a double" in error_of(r)["fields"]["_schema"][0]
    assert snapshot(app) == stored
    long_int = json.dumps({**event("long"), "firmware_note": 7}).replace(": 7", ": " + "9" * 40)
    r = station.request("POST", EVENTS, long_int.encode())
    assert r.status_code == 202
    assert station.get(f"{EVENTS}/{r.get_json()['id']}").status_code == 200


def test_a_measurement_dated_outside_the_calendar_in_use_is_422(station, stored, app):
    r = station.post_json(EVENTS, event("year-one", at=datetime(1, 1, 1, 12, tzinfo=CST)))
    assert r.status_code == 422 and "measured_at" in error_of(r)["fields"]
    assert snapshot(app) == stored
