"""Black-smoke snapshots: taking uploads in, keeping their images, the OpenCV estimate, the queue.

An upload is idempotent per (station, event_id) like an event: its hash covers the
metadata's meaning and the images' SHA-256, so a replay answers the stored id and a
changed upload is a conflict. Images are verified by decoding (never by name or declared
type) and kept content-addressed under the media directory, written before the row commits,
so a committed snapshot always finds its files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from core import pagination, regions
from core.db import insert_keyed_returning, utcnow
from core.errors import Conflict, NotFound
from core.queue import enqueue_after_commit
from core.settings import Settings
from remote_sensing import ringelmann
from remote_sensing.images import ImageInfo, ImageRejected, decode_grey, inspect_image
from remote_sensing.ingest import body_hash
from remote_sensing.models import PENDING_REVIEW, RECEIVED, REVIEWED, Snapshot, SnapshotKey
from schemas.common import not_in_future, parse_json
from schemas.snapshots import SnapshotMetadataIn

ANALYSE_JOB = "workers.jobs.analyse_snapshot"
IMAGE_URL = "/api/v1/black-smoke/snapshots/{id}/images/{n}"
_EXTENSIONS = {"jpeg": "jpg", "png": "png"}

_metadata_schema = SnapshotMetadataIn()


@dataclass(frozen=True)
class Received:
    id: int
    replay: bool  # the same upload came again: nothing was stored


# --- upload ------------------------------------------------------------------------------


def receive(
    session: Session, *, station_id: int, region: str, metadata: str | bytes | None, images: Sequence[bytes],
    settings: Settings,
) -> Received:
    """Validate and store one upload, then commit; the analysis job runs after the commit."""
    body = _parse_metadata(metadata)
    errors: dict[str, Any] = {}
    data: dict[str, Any] = {}
    try:
        data = _validate_metadata(body, settings.future_tolerance_s)
    except ValidationError as err:
        errors["metadata"] = err.messages
    infos, image_errors = _inspect_images(images, settings)
    if image_errors:
        errors["images"] = image_errors
    if errors:
        raise ValidationError(errors)

    digest = body_hash({"metadata": body, "images": [info.sha256 for info in infos]})
    stored = _stored(session, station_id, data["event_id"])
    # As in ingest: what was not there before is ours; a concurrent identical upload may
    # also answer 202.
    inserted = stored is None
    if stored is None:
        for blob, info in zip(images, infos, strict=True):
            store_image(settings.media_dir, blob, info)
        row = {
            "station_id": station_id, "event_id": data["event_id"], "body_hash": digest, "payload": body,
            "images": [_image_record(info) for info in infos], "region": region,
            "captured_at": data["captured_at"], "received_at": utcnow(),
            "camera_ringelmann": data.get("camera_ringelmann"), "status": RECEIVED,
        }
        insert_keyed_returning(session, SnapshotKey.__table__, Snapshot.__table__, [row], _KEY, ["id"])
        stored = _stored(session, station_id, data["event_id"])
        assert stored is not None
    pk, stored_digest = stored
    if stored_digest != digest:
        raise Conflict(
            f"event_id {data['event_id']} was already received with different metadata or images",
            code="event_id_conflict",
        )
    if inserted:
        enqueue_after_commit(session, ANALYSE_JOB, pk, job_id=f"smoke-{pk}")
    session.commit()
    return Received(pk, replay=not inserted)


def _parse_metadata(metadata: str | bytes | None) -> Any:
    if metadata is None:
        return None
    return parse_json(metadata, "the metadata part")


def _validate_metadata(body: Any, future_tolerance_s: int) -> dict[str, Any]:
    if body is None:
        raise ValidationError(["Missing data for required field."])
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the metadata must be a JSON object"]})
    data = _metadata_schema.load(body)
    not_in_future(data["captured_at"], future_tolerance_s, "captured_at")
    return data


def _inspect_images(images: Sequence[bytes], settings: Settings) -> tuple[list[ImageInfo], list[str]]:
    if not 1 <= len(images) <= settings.max_images:
        # Counted before any decoding, so a flood of parts costs nothing.
        return [], [f"1 to {settings.max_images} image parts are required, got {len(images)}"]
    infos: list[ImageInfo] = []
    errors: list[str] = []
    for n, blob in enumerate(images):
        try:
            infos.append(
                inspect_image(blob, max_bytes=settings.max_image_bytes, max_side_px=settings.max_image_side_px)
            )
        except ImageRejected as err:
            errors.append(f"image {n} ({err.code}): {err}")
    return infos, errors


def _image_record(info: ImageInfo) -> dict[str, Any]:
    return {"sha256": info.sha256, "format": info.format, "width": info.width, "height": info.height,
            "size_bytes": info.size_bytes}


_KEY = ["station_id", "event_id"]


def _stored(session: Session, station_id: int, event_id: str) -> tuple[int, str] | None:
    row = session.execute(
        select(SnapshotKey.id, Snapshot.body_hash)
        .join(Snapshot, (Snapshot.id == SnapshotKey.id) & (Snapshot.captured_at == SnapshotKey.captured_at))
        .where(SnapshotKey.station_id == station_id, SnapshotKey.event_id == event_id)
    ).first()
    return None if row is None else (row[0], row[1])


# --- media -------------------------------------------------------------------------------


def image_path(media_dir: str, sha256: str, fmt: str) -> Path:
    return Path(media_dir) / sha256[:2] / sha256[2:4] / f"{sha256}.{_EXTENSIONS[fmt]}"


def store_image(media_dir: str, data: bytes, info: ImageInfo) -> Path:
    """Write the image once under its content address; a reader never sees a partial file."""
    path = image_path(media_dir, info.sha256, info.format)
    if path.exists():  # only ever created by the rename below, so it is complete
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The answer promises durability: make the rename itself survive a crash.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def image_file(snapshot: Snapshot, n: int, media_dir: str) -> tuple[Path, str]:
    """Path and content type of image `n` (from 0) of `snapshot`."""
    if not 0 <= n < len(snapshot.images):
        raise NotFound(f"snapshot {snapshot.id} has {len(snapshot.images)} images (n from 0)")
    image = snapshot.images[n]
    return image_path(media_dir, image["sha256"], image["format"]), f"image/{image['format']}"


# --- analysis ----------------------------------------------------------------------------


def analyse(session: Session, snapshot_id: int, media_dir: str, step: float) -> bool:
    """Estimate the Ringelmann level of the snapshot's images together and keep the highest;
    False if already done.

    The images are one passage, estimated as such (ringelmann.estimate_passage). The record
    keeps the chosen image's estimate, every image's, and the plume region it measured
    (``plume``, absent when none was found) for the review page to outline.
    The estimate is computed outside any lock and written only if no other run wrote one,
    so a retried or duplicated job changes nothing. A snapshot a person already reviewed
    still gets its estimate but keeps its status.
    """
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or snapshot.analysed_at is not None:
        return False
    greys = [
        decode_grey(image_path(media_dir, image["sha256"], image["format"]).read_bytes()) for image in snapshot.images
    ]
    estimates = ringelmann.estimate_passage(greys, step)
    best = max(range(len(estimates)), key=lambda n: (estimates[n].level, estimates[n].blackness))
    record = {**estimates[best].to_record(), "image": best, "per_image": [e.to_record() for e in estimates]}
    plume = estimates[best].plume_record(best)
    if plume is not None:
        record["plume"] = plume
    result = session.execute(
        update(Snapshot)
        .where(Snapshot.id == snapshot_id, Snapshot.analysed_at.is_(None))
        .values(
            analysed_at=utcnow(), estimated_level=estimates[best].level, estimate=record,
            status=case((Snapshot.status == RECEIVED, PENDING_REVIEW), else_=Snapshot.status),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def unanalysed_ids(session: Session, older_than_s: int, limit: int) -> list[int]:
    """Snapshots whose analysis job should have run by now (it was lost)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    query = (
        select(Snapshot.id)
        .where(Snapshot.analysed_at.is_(None), Snapshot.received_at < cutoff)
        .order_by(Snapshot.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def requeue(session: Session, snapshot_ids: Sequence[int]) -> None:
    """Enqueue the analysis of `snapshot_ids` again (same job ids: a queued one is kept)."""
    for pk in snapshot_ids:
        enqueue_after_commit(session, ANALYSE_JOB, pk, job_id=f"smoke-{pk}")


# --- reading -----------------------------------------------------------------------------


def get(session: Session, snapshot_id: int, scope: str | None = None) -> Snapshot:
    """The snapshot, or 404 also when it lies outside the person's region `scope`."""
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or not regions.contains(scope, snapshot.region):
        raise NotFound("no such snapshot")
    return snapshot


def queue_page(
    session: Session, *, status: str, scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Snapshot], str | None]:
    """Snapshots with `status`, highest estimate first, then newest (by id)."""
    stmt = select(Snapshot).where(Snapshot.status == status)
    if scope is not None:
        stmt = stmt.where(Snapshot.region.startswith(regions.region_prefix(scope)))
    # Unanalysed snapshots have no estimate yet: newest first is all there is to sort by.
    sort = Snapshot.id if status == RECEIVED else Snapshot.estimated_level
    return pagination.page(session, stmt, sort, Snapshot.id, limit=limit, cursor=cursor)


def reviewed_page(
    session: Session, *, scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Snapshot], str | None]:
    """Confirmed and rejected snapshots, latest decision first."""
    stmt = select(Snapshot).where(Snapshot.status.in_(REVIEWED))
    if scope is not None:
        stmt = stmt.where(Snapshot.region.startswith(regions.region_prefix(scope)))
    return pagination.page(session, stmt, Snapshot.reviewed_at, Snapshot.id, limit=limit, cursor=cursor)


def view(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as the API answers it (SnapshotOut)."""
    plate = snapshot.payload["plate"]
    estimate = snapshot.estimate
    reviewed = snapshot.status in REVIEWED
    return {
        "id": snapshot.id,
        "event_id": snapshot.event_id,
        "plate": plate["number"],
        "plate_color": plate["color"],
        "plate_confidence": plate["confidence"],
        "captured_at": snapshot.captured_at,
        "received_at": snapshot.received_at,
        "lane": snapshot.payload.get("lane"),
        "estimated_ringelmann": snapshot.estimated_level,
        "estimate": {k: v for k, v in estimate.items() if k != "per_image"} if estimate else None,
        "plume": estimate.get("plume") if estimate else None,
        "camera_ringelmann": snapshot.camera_ringelmann,
        "status": snapshot.status,
        "images": [IMAGE_URL.format(id=snapshot.id, n=n) for n in range(len(snapshot.images))],
        "review": {
            "decision": "confirm" if snapshot.reviewed_level is not None else "reject",
            "ringelmann": snapshot.reviewed_level, "note": snapshot.review_note,
            "by": snapshot.reviewed_by, "at": snapshot.reviewed_at,
        } if reviewed else None,
        "violation_id": snapshot.violation_id,
    }
