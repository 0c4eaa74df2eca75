"""Black-smoke snapshots end to end: signed multipart upload -> stored once -> analysed by a
worker -> review queue -> a person confirms (a violation and a case) or rejects."""

from __future__ import annotations

import json
import struct
import zlib
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from core.audit import AuditRecord
from enforcement.models import Case, Violation
from remote_sensing import snapshots
from remote_sensing.models import Snapshot
from tests.factories import CST
from tests.unit.synthetic_smoke import Scene, encode_jpeg, render_jpeg

UPLOAD = "/api/v1/black-smoke/snapshots"
BOUNDARY = "lantian-test-boundary-7MA4YWxk"


@cache
def jpeg(blackness: float = 0.65, seed: int = 1) -> bytes:
    return render_jpeg(Scene(width=640, height=360, blackness=blackness, noise_sigma=2.0, seed=seed))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR declares `width` x `height`, with a token of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat)))


def metadata(event_id: str = "BS001-20261122-000001", *, at: datetime | None = None, plate: str = "苏B12345",
             color: str = "yellow", confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    at = at or datetime.now(CST) - timedelta(minutes=1)
    body = {"event_id": event_id, "captured_at": at.isoformat(), "lane": 2,
            "plate": {"number": plate, "color": color, "confidence": confidence}, "camera_ringelmann": 3}
    body.update(extra)
    return body


def multipart(meta: Any = None, images: list[bytes] | None = None, *, meta_as_file: bool = False) -> bytes:
    """The exact bytes a station sends (and signs)."""
    parts: list[bytes] = []
    if meta is not None:
        raw = meta if isinstance(meta, bytes) else json.dumps(meta, ensure_ascii=False).encode()
        filename = '; filename="metadata.json"' if meta_as_file else ""
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"{filename}\r\n'
                     f"Content-Type: application/json\r\n\r\n".encode() + raw + b"\r\n")
    for n, image in enumerate(images or []):
        # Names and declared types are deliberately wrong: the server must sniff.
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images"; filename="cam{n}.gif"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload(station: Any, meta: Any = None, images: list[bytes] | None = None, **kw: Any) -> Any:
    body = multipart(meta, images, **kw)
    return station.request("POST", UPLOAD, body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


@pytest.fixture()
def smoke(make_station: Any) -> Any:
    return make_station("BS001", kind="black_smoke")


def stored(app: Any, pk: int) -> Snapshot:
    with app.extensions["lantian"].sessions() as s:
        return s.get(Snapshot, pk)


def count(app: Any, model: Any) -> int:
    with app.extensions["lantian"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def received(app: Any, smoke: Any, drain: Any, event_id: str, blackness: float = 0.65, **kw: Any) -> int:
    r = upload(smoke, metadata(event_id, **kw), [jpeg(blackness)])
    assert r.status_code == 202, r.get_json()
    drain()
    return r.get_json()["id"]


# --- upload ------------------------------------------------------------------------------


def test_signed_multipart_is_stored_then_analysed(app, smoke, drain, settings):
    images = [jpeg(0.2), jpeg(0.65)]
    r = upload(smoke, metadata(), images)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "received" and isinstance(body["id"], int)
    snap = stored(app, body["id"])  # stored before the answer, with its files
    assert [i["format"] for i in snap.images] == ["jpeg", "jpeg"]
    for blob, image in zip(images, snap.images, strict=True):
        path = snapshots.image_path(settings.media_dir, image["sha256"], "jpeg")
        assert path.read_bytes() == blob
        assert path.relative_to(settings.media_dir).parts[:2] == (image["sha256"][:2], image["sha256"][2:4])
    drain()
    snap = stored(app, body["id"])
    assert snap.status == "pending_review"
    assert snap.estimated_level == 3 and snap.estimate["image"] == 1  # the highest of the two
    assert [e["level"] for e in snap.estimate["per_image"]] == [1, 3]
    assert snap.region == "320200" and snap.camera_ringelmann == 3


def test_the_measured_plume_region_is_stored_and_listed(app, smoke, drain, login):
    r = upload(smoke, metadata("plume-region"), [jpeg(0.2), jpeg(0.65)])
    drain()
    plume = stored(app, r.get_json()["id"]).estimate["plume"]
    assert plume["image"] == 1  # the image the level comes from
    assert 3 <= len(plume["polygon"]) <= 64
    x, y, w, h = plume["bbox"]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in plume["polygon"])
    assert all(0 <= px < 640 and 0 <= py < 360 for px, py in plume["polygon"])
    item = app.test_client().get(UPLOAD + "?status=pending_review", headers=login("env_officer")).get_json()["items"][0]
    assert item["plume"] == plume and item["estimate"]["plume"] == plume


def test_no_plume_found_stores_no_region(app, smoke, drain, login):
    upload(smoke, metadata("bare-road"), [encode_jpeg(np.full((360, 640), 120, np.uint8), 90)])
    drain()
    item = app.test_client().get(UPLOAD + "?status=pending_review", headers=login("env_officer")).get_json()["items"][0]
    assert item["estimated_ringelmann"] == 0 and item["plume"] is None and "plume" not in item["estimate"]


def test_metadata_may_come_as_a_file_part(app, smoke):
    r = upload(smoke, metadata(), [jpeg()], meta_as_file=True)
    assert r.status_code == 202, r.get_json()


def test_replay_answers_200_same_id_and_stores_once(app, smoke, settings):
    meta = metadata()
    first = upload(smoke, meta, [jpeg()])
    reordered = dict(reversed(list(meta.items())))
    again = upload(smoke, reordered, [jpeg()])
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count(app, Snapshot) == 1


@pytest.mark.parametrize("change", ["metadata", "images"])
def test_replay_with_other_content_is_conflict(app, smoke, change):
    meta = metadata()
    first = upload(smoke, meta, [jpeg()])
    if change == "metadata":
        r = upload(smoke, {**meta, "lane": 3}, [jpeg()])
    else:
        r = upload(smoke, meta, [jpeg(0.2)])
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "event_id_conflict"
    assert stored(app, first.get_json()["id"]).payload["lane"] == 2
    assert count(app, Snapshot) == 1


def test_identical_images_are_written_once(app, smoke, settings):
    upload(smoke, metadata("a"), [jpeg()])
    upload(smoke, metadata("b"), [jpeg(), jpeg()])
    files = [p for p in Path(settings.media_dir).rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".jpg"


def _fields(r: Any, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "validation_error"
    return error["fields"]


def test_a_file_that_is_not_an_image_is_422(app, smoke):
    fields = _fields(upload(smoke, metadata(), [jpeg(), b"%PDF-1.7 not a camera image"]))
    assert fields == {"images": ["image 1 (not_an_image): file is not an image"]}
    assert count(app, Snapshot) == 0


def test_a_truncated_jpeg_is_422(app, smoke):
    data = jpeg()
    assert "image_corrupt" in _fields(upload(smoke, metadata(), [data[: len(data) // 2]]))["images"][0]


@pytest.mark.parametrize("n", [0, 4])
def test_image_count_out_of_range_is_422(app, smoke, n):
    fields = _fields(upload(smoke, metadata(), [jpeg()] * n))
    assert fields == {"images": [f"1 to 3 image parts are required, got {n}"]}


def test_an_image_over_the_byte_limit_is_422(app, smoke, settings):
    big = jpeg() + b"\x00" * (settings.max_image_bytes + 1 - len(jpeg()))
    assert "image_too_large" in _fields(upload(smoke, metadata(), [big]))["images"][0]


def test_a_request_over_the_whole_limit_is_413(app, smoke, settings):
    big = b"\x00" * (settings.max_images * settings.max_image_bytes + 1024 * 1024 + 1)
    r = upload(smoke, metadata(), [big])
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "body_too_large"


def test_a_giant_header_is_refused_before_decoding(app, smoke):
    fields = _fields(upload(smoke, metadata(), [png_header(50_000, 50_000)]))
    assert fields["images"][0].startswith("image 0 (image_dimensions_too_large)")


def test_malformed_metadata_json_is_400(app, smoke):
    r = upload(smoke, b'{"event_id": ', [jpeg()])
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed_json"


def test_missing_metadata_is_422(app, smoke):
    assert _fields(upload(smoke, None, [jpeg()])) == {"metadata": ["Missing data for required field."]}


def test_bad_metadata_and_images_are_reported_together(app, smoke):
    future = datetime.now(CST) + timedelta(hours=1)
    fields = _fields(upload(smoke, metadata(at=future, camera_ringelmann=7), [b"GIF89a..."]))
    assert fields["metadata"]["camera_ringelmann"] == [
        "Must be greater than or equal to 0 and less than or equal to 5."
    ]
    assert fields["images"] == ["image 0 (unsupported_format): only JPEG and PNG images are accepted"]
    future_only = _fields(upload(smoke, metadata(at=future), [jpeg()]))
    assert future_only == {"metadata": {"captured_at": ["is more than 300 s in the future"]}}


def test_only_black_smoke_stations_upload(app, make_station):
    rs = make_station("RS001", kind="remote_sensing")
    r = upload(rs, metadata(), [jpeg()])
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "wrong_station_kind"


def test_unsigned_or_tampered_upload_is_401(app, client, smoke):
    body = multipart(metadata(), [jpeg()])
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    assert client.post(UPLOAD, data=body, content_type=ctype).status_code == 401
    headers = smoke.headers("POST", UPLOAD, body)
    tampered = body.replace(b"BS001-", b"BS002-")
    r = client.post(UPLOAD, data=tampered, content_type=ctype, headers=headers)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "bad_signature"


def test_a_json_body_is_415(app, smoke):
    r = smoke.post_json(UPLOAD, metadata())
    assert r.status_code == 415


# --- analysis ----------------------------------------------------------------------------


def test_analysis_runs_once(app, smoke, drain):
    from workers import jobs

    pk = received(app, smoke, drain, "once")
    before = stored(app, pk)
    assert jobs.analyse_snapshot(pk) is False
    after = stored(app, pk)
    assert (after.analysed_at, after.estimate) == (before.analysed_at, before.estimate)


def test_sweeper_analyses_a_snapshot_whose_job_was_lost(app, smoke, drain):
    from workers import jobs

    pk = received(app, smoke, drain, "lost")
    rt = app.extensions["lantian"]
    with rt.sessions() as s, s.begin():
        snap = s.get(Snapshot, pk)
        snap.status, snap.analysed_at, snap.estimated_level, snap.estimate = "received", None, None, None
        snap.received_at = snap.received_at - timedelta(seconds=rt.settings.sweep_after_s + 5)
    if rt.redis is not None:
        rt.redis.flushdb()  # the job is gone with Redis
    assert jobs.sweep() == 1
    drain()
    snap = stored(app, pk)
    assert snap.status == "pending_review" and snap.estimated_level == 3


# --- queue and images --------------------------------------------------------------------


def test_queue_is_highest_estimate_first_then_newest(app, smoke, drain, login):
    ids = {b: received(app, smoke, drain, f"q{b}", blackness=b) for b in (0.2, 0.85, 0.45, 0.65)}
    newer_equal = received(app, smoke, drain, "q0.65-later", blackness=0.65)
    officer = login("env_officer", "320200")
    r = app.test_client().get(UPLOAD + "?status=pending_review", headers=officer)
    assert r.status_code == 200
    page = r.get_json()
    expected = [ids[0.85], newer_equal, ids[0.65], ids[0.45], ids[0.2]]
    assert [item["id"] for item in page["items"]] == expected
    assert page["next_cursor"] is None
    item = page["items"][0]
    assert item["plate"] == "苏B12345" and item["camera_ringelmann"] == 3 and item["status"] == "pending_review"
    assert item["estimated_ringelmann"] == 4
    assert item["images"] == [f"{UPLOAD}/{ids[0.85]}/images/0"]
    assert item["captured_at"].endswith("Z")
    # The same order a page at a time.
    walked, cursor = [], None
    while True:
        url = UPLOAD + "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = app.test_client().get(url, headers=officer).get_json()
        walked += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert walked == expected


def test_queue_is_scoped_and_for_env_officers(app, smoke, drain, login):
    received(app, smoke, drain, "scoped")
    client = app.test_client()
    assert client.get(UPLOAD, headers=login("env_officer", "330100")).get_json()["items"] == []
    assert len(client.get(UPLOAD, headers=login("env_officer", "320000")).get_json()["items"]) == 1
    assert client.get(UPLOAD, headers=login("police")).status_code == 403
    assert client.get(UPLOAD).status_code == 401
    assert client.get(UPLOAD + "?status=lost", headers=login("admin")).status_code == 422


def test_images_are_served_to_the_right_people(app, smoke, drain, login, make_station):
    pk = received(app, smoke, drain, "img")
    url = f"{UPLOAD}/{pk}/images/0"
    client = app.test_client()
    people = {role: login(role, "320200" if role != "admin" else None) for role in ("env_officer", "police", "admin")}
    for role, headers in people.items():
        r = client.get(url, headers=headers)
        assert r.status_code == 200, role
        assert r.data == jpeg() and r.mimetype == "image/jpeg"
        assert r.headers["X-Content-Type-Options"] == "nosniff" and "private" in r.headers["Cache-Control"]
    assert client.get(url, headers=login("transport")).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(url, headers=login("env_officer", "330100")).status_code == 404
    assert client.get(f"{UPLOAD}/{pk}/images/1", headers=people["police"]).status_code == 404
    assert client.get(f"{UPLOAD}/{pk + 99}/images/0", headers=people["police"]).status_code == 404
    assert smoke.get(url).status_code == 200
    other = make_station("BS002", kind="black_smoke")
    assert other.get(url).status_code == 404  # another station's snapshot is as absent as a missing one


# --- review ------------------------------------------------------------------------------


def review(app: Any, pk: int, headers: dict, **body: Any) -> Any:
    return app.test_client().post(f"{UPLOAD}/{pk}/review", json=body, headers=headers)


def test_confirm_records_a_violation_and_opens_a_case(app, smoke, drain, login):
    pk = received(app, smoke, drain, "confirm", plate="苏B54321")
    officer = login("env_officer", "320200", username="wang")
    r = review(app, pk, officer, decision="confirm", ringelmann=3, note="dense plume")
    assert r.status_code == 200, r.get_json()
    view = r.get_json()
    assert view["status"] == "confirmed"
    assert view["review"]["ringelmann"] == 3 and view["review"]["by"] == "user:wang"
    assert view["review"]["decision"] == "confirm" and view["review"]["note"] == "dense plume"
    with app.extensions["lantian"].sessions() as s:
        violation = s.get(Violation, view["violation_id"])
        assert violation.source == "black_smoke" and violation.source_ref == str(pk)
        assert violation.details["ringelmann"] == 3 and violation.details["estimated"] == 3
        case = s.get(Case, violation.case_id)
        assert case.status == "open" and case.vehicle_id == violation.vehicle_id
        actions = s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
        assert actions[-1] == "snapshot.confirmed" and "violation.recorded" in actions
        assert stored(app, pk).vehicle_id == violation.vehicle_id
    again = review(app, pk, officer, decision="reject")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_reviewed"
    queue = app.test_client().get(UPLOAD + "?status=confirmed", headers=officer).get_json()
    assert [item["id"] for item in queue["items"]] == [pk]


def test_reject_records_no_violation(app, smoke, drain, login):
    pk = received(app, smoke, drain, "reject")
    officer = login("env_officer", "320200")
    r = review(app, pk, officer, decision="reject", note="steam, not smoke")
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert r.get_json()["violation_id"] is None and count(app, Violation) == 0
    assert review(app, pk, officer, decision="confirm", ringelmann=3).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [({"decision": "confirm", "ringelmann": 1}, "ringelmann"), ({"decision": "confirm"}, "ringelmann"),
     ({"decision": "reject", "ringelmann": 3}, "ringelmann"), ({"decision": "maybe"}, "decision"),
     ({"decision": "confirm", "ringelmann": 6}, "ringelmann")],
)
def test_review_validation(app, smoke, drain, login, body, field):
    pk = received(app, smoke, drain, "v")
    assert field in _fields(review(app, pk, login("env_officer", "320200"), **body))
    assert stored(app, pk).status == "pending_review" and count(app, Violation) == 0


def test_an_unreadable_plate_cannot_be_confirmed(app, smoke, drain, login):
    pk = received(app, smoke, drain, "unreadable", plate="??")
    officer = login("env_officer", "320200")
    r = review(app, pk, officer, decision="confirm", ringelmann=3)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "plate_unreadable"
    assert review(app, pk, officer, decision="reject").status_code == 200


def test_review_is_scoped_to_the_officers_region(app, smoke, drain, login):
    pk = received(app, smoke, drain, "far")
    assert review(app, pk, login("env_officer", "330100"), decision="reject").status_code == 404
    assert review(app, pk, login("police", "320200"), decision="reject").status_code == 403


def test_a_snapshot_being_analysed_can_be_reviewed(app, smoke, login):
    from workers import jobs

    r = upload(smoke, metadata("early"), [jpeg()])
    pk = r.get_json()["id"]
    rt = app.extensions["lantian"]
    with rt.sessions() as s, s.begin():  # as if the analysis had not run yet
        snap = s.get(Snapshot, pk)
        snap.status, snap.analysed_at, snap.estimated_level, snap.estimate = "received", None, None, None
    assert review(app, pk, login("env_officer", "320200"), decision="confirm", ringelmann=2).status_code == 200
    assert jobs.analyse_snapshot(pk) is True  # the estimate still arrives and keeps the decision
    snap = stored(app, pk)
    assert snap.status == "confirmed" and snap.estimated_level == 3 and snap.reviewed_level == 2
