"""The review page: environment officers work the black-smoke queue in a browser.

Server-rendered, signed-cookie session (SECRET_KEY is settings.secret_key), a CSRF token
per session checked on every POST. The page calls the same services as the API.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from core import identity
from core.errors import ApiError
from core.identity import Role, User
from core.web import db, runtime
from enforcement import reviews
from remote_sensing import snapshots
from remote_sensing.black_smoke_api import image_response
from remote_sensing.models import PENDING_REVIEW

bp = Blueprint("review_page", __name__, url_prefix="/review", template_folder="templates")
F = TypeVar("F", bound=Callable[..., Any])

ROLES = (Role.ENV_OFFICER, Role.ADMIN)
PAGE_SIZE = 20


@bp.record_once
def _cookie_policy(state: Any) -> None:
    # The session cookie is only ever needed by same-site navigation and form posts.
    state.app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token}


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            abort(400, "the form has expired; reload the page")


def _officer() -> User | None:
    """The signed-in person, re-read so a deactivated or demoted account is out at once."""
    user_id = session.get("user_id")
    user = db().get(User, user_id) if user_id is not None else None
    return user if user is not None and user.active and user.role in ROLES else None


def _reviewer(user: User) -> reviews.Reviewer:
    return reviews.Reviewer(f"user:{user.username}", None if user.role == Role.ADMIN else user.region)


def signed_in(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = _officer()
        if user is None:
            return redirect(url_for("review_page.login"))
        return view(user, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    error = None
    if request.method == "POST":
        user = identity.authenticate(db(), request.form.get("username", ""), request.form.get("password", ""))
        if user is not None and user.role in ROLES:
            session.clear()  # a fresh session (and CSRF token) for the signed-in person
            session["user_id"] = user.id
            return redirect(url_for("review_page.queue"))
        error = "Wrong username or password, or not an environment officer."
    return render_template("review/login.html", error=error)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("review_page.login"))


@bp.get("")
@signed_in
def queue(user: User) -> str:
    reviewer = _reviewer(user)
    rows, next_cursor = snapshots.queue_page(
        db(), status=PENDING_REVIEW, scope=reviewer.scope, limit=PAGE_SIZE, cursor=request.args.get("cursor")
    )
    policy = runtime().settings.policy
    items = [{**snapshots.view(row), "suggested": reviews.suggested_level(row, policy)} for row in rows]
    return render_template(
        "review/queue.html", user=user, items=items, next_cursor=next_cursor,
        limit=policy.black_smoke_ringelmann_limit,
    )


@bp.get("/snapshots/<int:snapshot_id>/images/<int:n>")
@signed_in
def image(user: User, snapshot_id: int, n: int) -> Response:
    snapshot = snapshots.get(db(), snapshot_id, _reviewer(user).scope)
    path, media_type = snapshots.image_file(snapshot, n, runtime().settings.media_dir)
    return image_response(path, media_type)


@bp.post("/snapshots/<int:snapshot_id>")
@signed_in
def decide(user: User, snapshot_id: int) -> Response:
    rt = runtime()
    decision = request.form.get("decision", "")
    if decision not in (reviews.CONFIRM, reviews.REJECT):
        abort(400, "decision must be confirm or reject")
    level = request.form.get("ringelmann", "") if decision == reviews.CONFIRM else ""
    try:
        snapshot = reviews.review(
            db(), snapshot_id, decision=decision, ringelmann=int(level) if level.isdigit() else None,
            note=request.form.get("note") or None, reviewer=_reviewer(user), policy=rt.settings.policy, tz=rt.tz,
        )
    except ApiError as err:
        flash(f"Snapshot {snapshot_id}: {err.message}", "error")
    else:
        if snapshot.violation_id is not None:
            flash(f"Snapshot {snapshot_id} confirmed at Ringelmann {snapshot.reviewed_level}: "
                  f"violation {snapshot.violation_id} recorded.", "ok")
        else:
            flash(f"Snapshot {snapshot_id} rejected.", "ok")
    return redirect(url_for("review_page.queue"))
