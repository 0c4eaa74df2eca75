"""Black-smoke review API: an environment officer confirms or rejects a snapshot."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.identity import Role
from core.web import current_person, db, require_person, runtime
from enforcement import reviews
from remote_sensing import snapshots
from schemas.snapshots import ReviewIn, SnapshotOut, SuspectedClonePage, SuspectedCloneQuery

blp = Blueprint("black_smoke_reviews", __name__, url_prefix="/api/v1", description="Black-smoke review")


@blp.post("/black-smoke/snapshots/<int:snapshot_id>/review")
@require_person(Role.ENV_OFFICER)
@blp.arguments(ReviewIn)
@blp.response(200, SnapshotOut)
@blp.alt_response(409, description="already_reviewed")
@blp.alt_response(422, description="validation_error, plate_unreadable, plate_ambiguous, "
                  "no_tailpipe, station_uncalibrated, station_suspended")
def post_review(body: dict[str, Any], snapshot_id: int) -> dict[str, Any]:
    """Confirm or reject a black-smoke snapshot.

    A confirmation creates a violation; a second review of the same snapshot answers 409
    `already_reviewed`.
    """
    rt = runtime()
    person = current_person()
    snapshot = reviews.review(
        db(), snapshot_id, decision=body["decision"], ringelmann=body.get("ringelmann"), note=body.get("note"),
        reviewer=reviews.Reviewer(person.actor, person.scope), policy=rt.settings.policy, tz=rt.tz,
        plate=body["plate"], plate_color=body["plate_color"],
    )
    return snapshots.view(snapshot)


@blp.get("/suspected-clones")
@require_person(Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)
@blp.arguments(SuspectedCloneQuery, location="query")
@blp.response(200, SuspectedClonePage)
def list_suspected_clones(args: dict[str, Any]) -> dict[str, Any]:
    """Smoke a reviewer saw on a plate registered to an electric vehicle: a misread or a cloned plate (套牌)."""
    items, next_cursor = reviews.suspected_clones(db(), scope=current_person().scope, region=args["region"],
                                                  limit=args["limit"], cursor=args["cursor"])
    return {"items": items, "next_cursor": next_cursor}
