"""Black-smoke snapshots: the station upload, the review queue and the images."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request, send_file
from flask_smorest import Blueprint
from marshmallow import ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from core.errors import NotFound
from core.identity import Role
from core.web import current_person, db, require_person, require_station, runtime, station_or_person
from remote_sensing import snapshots
from schemas.events import Accepted
from schemas.snapshots import SnapshotListArgs, SnapshotPage, SnapshotUploadDoc

blp = Blueprint("black_smoke", __name__, url_prefix="/api/v1/black-smoke", description="Black-smoke snapshots")


@blp.post("/snapshots")
@require_station("black_smoke")
@blp.doc(requestBody={"content": {"multipart/form-data": {
    "schema": SnapshotUploadDoc, "encoding": {"metadata": {"contentType": "application/json"}}}}})
@blp.response(202, Accepted)
@blp.alt_response(200, schema=Accepted, description="the same upload again (replay)")
def post_snapshot() -> tuple[dict[str, Any], int]:
    """Upload one black-smoke snapshot: a `metadata` JSON part and 1 to 3 `images`.

    Same idempotency as events (`event_id`): 202 the first time, 200 for the same upload again, 409
    for a different one. The signature covers the exact multipart body bytes.
    """
    # require_station has read and cached the raw body for the signature; werkzeug parses
    # the form from that cache.
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("snapshots are sent as multipart/form-data")
    settings = runtime().settings
    if "images" in request.form:
        raise ValidationError({"images": ["each image must be a file part (with a filename)"]})
    metadata = request.form.get("metadata")
    if metadata is None and "metadata" in request.files:
        metadata = request.files["metadata"].read()
    # One byte over the limit is enough to refuse; the rest is never read into memory.
    images = [part.read(settings.max_image_bytes + 1) for part in request.files.getlist("images")]
    received = snapshots.receive(
        db(), station_id=g.station.id, region=g.station.region, metadata=metadata, images=images, settings=settings
    )
    return {"id": received.id, "status": "received"}, 200 if received.replay else 202


@blp.get("/snapshots")
@require_person(Role.ENV_OFFICER)
@blp.arguments(SnapshotListArgs, location="query")
@blp.response(200, SnapshotPage)
def list_snapshots(args: dict[str, Any]) -> dict[str, Any]:
    """List snapshots waiting for review (highest Ringelmann estimate first)."""
    rows, next_cursor = snapshots.queue_page(
        db(), status=args["status"], scope=current_person().scope, limit=args["limit"], cursor=args["cursor"]
    )
    return {"items": [snapshots.view(row) for row in rows], "next_cursor": next_cursor}


@blp.get("/snapshots/<int:snapshot_id>/images/<int:n>")
@station_or_person(Role.ENV_OFFICER, Role.POLICE)
@blp.doc(responses={"200": {"description": "the image bytes, typed by their sniffed format", "content": {
    media: {"schema": {"type": "string", "format": "binary"}} for media in ("image/jpeg", "image/png")}}})
def get_image(snapshot_id: int, n: int) -> Response:
    """Fetch one image of a snapshot (`n` from 0)."""
    if g.station is not None:
        snapshot = snapshots.get(db(), snapshot_id)
        if snapshot.station_id != g.station.id:
            raise NotFound("no such snapshot")  # as for a missing one
    else:
        snapshot = snapshots.get(db(), snapshot_id, current_person().scope)
    path, media_type = snapshots.image_file(snapshot, n, runtime().settings.media_dir)
    return image_response(path, media_type)


def image_response(path: Any, media_type: str) -> Response:
    """Content-addressed, so it never changes; private, because it is evidence."""
    response = send_file(path, mimetype=media_type, max_age=86400, conditional=True)
    response.cache_control.private = True
    response.cache_control.public = False
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
