"""Remote-sensing ingest end to end: signed POST -> stored once -> judged by a worker."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import func, select

from remote_sensing.models import Event
from tests.factories import CST, event

EVENTS = "/api/v1/remote-sensing/events"


def count_events(app) -> int:
    with app.extensions["lantian"].sessions() as s:
        return s.scalar(select(func.count()).select_from(Event))


def test_event_is_stored_then_judged(app, station, drain, login):
    r = station.post_json(EVENTS, event())
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "received" and isinstance(body["id"], int)
    drain()
    got = station.get(f"{EVENTS}/{body['id']}")
    assert got.status_code == 200
    view = got.get_json()
    assert view["status"] == "processed"
    assert view["verdict"] == "pass"
    assert view["validity"] == {"valid": True, "reasons": []}
    assert view["vehicle"] == {"plate": "苏B12345", "plate_color": "yellow", "match": "none"}
    assert view["station"] == "RS001"


def test_replay_same_body_answers_200_same_id(app, station):
    body = event()
    first = station.post_json(EVENTS, body)
    again = station.post_json(EVENTS, body)
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count_events(app) == 1


def test_replay_with_different_body_is_conflict_and_changes_nothing(app, station):
    body = event()
    first = station.post_json(EVENTS, body)
    changed = {**body, "speed_kmh": 60.0}
    r = station.post_json(EVENTS, changed)
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "event_id_conflict"
    with app.extensions["lantian"].sessions() as s:
        stored = s.get(Event, first.get_json()["id"])
        assert stored.payload["speed_kmh"] == 42.5


def test_key_order_and_spacing_do_not_make_a_conflict(app, station):
    body = event()
    station.post_json(EVENTS, body)
    raw = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=True).encode()
    assert station.request("POST", EVENTS, raw).status_code == 200


def test_two_exceedances_make_one_violation(app, station, drain):
    now = datetime.now(CST)
    high = {"no_ppm": 1600}
    r1 = station.post_json(EVENTS, event("e1", at=now - timedelta(hours=2), measurements=high))
    drain()
    r2 = station.post_json(EVENTS, event("e2", at=now - timedelta(hours=1), measurements=high))
    drain()
    v1 = station.get(f"{EVENTS}/{r1.get_json()['id']}").get_json()
    v2 = station.get(f"{EVENTS}/{r2.get_json()['id']}").get_json()
    assert v1["verdict"] == "exceed" and v1["exceeded"] == ["no_ppm"] and v1["violation_id"] is None
    assert v1["warnings"] == ["no_ppm"]
    assert v2["verdict"] == "exceed" and v2["violation_id"] is not None
    assert v2["policy"]["version"]
    assert v2["limits"]["no_ppm"] == 1500


def test_batch_answers_each_in_order(app, station, drain):
    good = event("b1")
    bad = event("b2", speed_kmh=-3)
    r = station.post_json(EVENTS + "/batch", {"events": [good, bad, good, {**good, "lane": 2}]})
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["received", "invalid", "duplicate", "conflict"]
    assert results[1]["errors"] == {"speed_kmh": ["Must be greater than or equal to 0 and less than or equal to 400."]}
    assert results[0]["id"] == results[2]["id"] == results[3]["id"]
    assert count_events(app) == 1
