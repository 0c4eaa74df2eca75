"""The review page: environment officers work the black-smoke queue in a browser.

The queue (highest estimate first) and a "reviewed" tab (latest decision first), each
snapshot with its station, the vehicle its plate reads as, the estimate and the plume the
analyser outlined; images open large; `c` / `r` confirm or reject the selected snapshot.
The page calls the same services as the API (sign-in and language: `enforcement.pages`).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.wrappers import Response

from core.errors import ApiError
from core.identity import Role, User
from core.registry import PLATE_COLORS
from core.web import db, runtime
from enforcement import review_cards, reviews
from enforcement.pages import Console
from remote_sensing import snapshots
from remote_sensing.black_smoke_api import image_response
from remote_sensing.models import PENDING_REVIEW

bp = Blueprint("review_page", __name__, url_prefix="/review", template_folder="templates")
PAGE_SIZE = 20

# A refused review in the officer's words, by its stable code (others show the service's text).
REFUSALS = {
    "already_reviewed": lazy_gettext("it was already reviewed (by someone else?); reload the queue."),
    "validation_error": lazy_gettext("only a level above the limit can be confirmed; reject the snapshot instead."),
    "plate_unreadable": lazy_gettext("the plate is not readable: enter the plate and colour you read in the image."),
    "no_tailpipe": lazy_gettext("the plate belongs to an electric vehicle (no tailpipe): a misread or a cloned plate."),
    "not_found": lazy_gettext("no such snapshot in your region."),
}

console = Console(
    bp, (Role.ENV_OFFICER, Role.ADMIN), "review_page.queue", lambda: _("Black-smoke review"),
    lambda: _("Wrong username or password, or not an environment officer."),
)


def _reviewer(user: User) -> reviews.Reviewer:
    return reviews.Reviewer(f"user:{user.username}", None if user.role == Role.ADMIN else user.region)


@bp.get("")
@console.signed_in
def queue(user: User) -> str:
    rows, next_cursor = snapshots.queue_page(
        db(), status=PENDING_REVIEW, scope=_reviewer(user).scope, limit=PAGE_SIZE, cursor=request.args.get("cursor")
    )
    policy = runtime().settings.policy
    return render_template(
        "review/queue.html", user=user, tab="queue", items=review_cards.cards(db(), rows, policy),
        next_cursor=next_cursor, limit=policy.black_smoke_ringelmann_limit, plate_colors=PLATE_COLORS,
    )


@bp.get("/reviewed")
@console.signed_in
def reviewed(user: User) -> str:
    rows, next_cursor = snapshots.reviewed_page(
        db(), scope=_reviewer(user).scope, limit=PAGE_SIZE, cursor=request.args.get("cursor")
    )
    return render_template(
        "review/reviewed.html", user=user, tab="reviewed",
        items=review_cards.cards(db(), rows, runtime().settings.policy), next_cursor=next_cursor,
    )


@bp.get("/snapshots/<int:snapshot_id>/images/<int:n>")
@console.signed_in
def image(user: User, snapshot_id: int, n: int) -> Response:
    snapshot = snapshots.get(db(), snapshot_id, _reviewer(user).scope)
    path, media_type = snapshots.image_file(snapshot, n, runtime().settings.media_dir)
    return image_response(path, media_type)


@bp.post("/snapshots/<int:snapshot_id>")
@console.signed_in
def decide(user: User, snapshot_id: int) -> Response:
    rt = runtime()
    decision = request.form.get("decision", "")
    if decision not in (reviews.CONFIRM, reviews.REJECT):
        abort(400, _("The decision must be confirm or reject."))
    level = request.form.get("ringelmann", "").strip() if decision == reviews.CONFIRM else ""
    # ASCII digits only: "²".isdigit() is true and int("²") fails.
    if level and not (level.isascii() and level.isdigit() and len(level) <= 2):
        abort(400, _("The Ringelmann level must be a whole number from 0 to 5."))
    # The officer's reading of the plate, passed on only when filled in.
    correction = {k: v for k in ("plate", "plate_color") if (v := request.form.get(k, "").strip())}
    if "plate_color" in correction and correction["plate_color"] not in PLATE_COLORS:
        abort(400, _("Unknown plate colour."))
    try:
        snapshot = reviews.review(
            db(), snapshot_id, decision=decision, ringelmann=int(level) if level else None,
            note=request.form.get("note") or None, reviewer=_reviewer(user), policy=rt.settings.policy, tz=rt.tz,
            **correction,
        )
    except ApiError as err:
        flash(_("Snapshot %(id)s: %(message)s", id=snapshot_id, message=REFUSALS.get(err.code, err.message)), "error")
    else:
        if snapshot.violation_id is not None:
            flash(_("Snapshot %(id)s confirmed at Ringelmann %(level)s: violation %(violation)s recorded.",
                    id=snapshot_id, level=snapshot.reviewed_level, violation=snapshot.violation_id), "ok")
        else:
            flash(_("Snapshot %(id)s rejected.", id=snapshot_id), "ok")
    return redirect(url_for("review_page.queue"))
