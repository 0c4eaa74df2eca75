"""Blacklists and key supervision API, and the public disclosure of the blacklist."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask_smorest import Blueprint
from sqlalchemy import select

from core.errors import Conflict, NotFound
from core.identity import Role
from core.pagination import page
from core.registry import Vehicle
from core.spreadsheets import safe_cell
from core.web import current_person, db, public, read_db, require_person, runtime
from enforcement import listings
from enforcement.cases import in_region, local_today
from enforcement.models import Listing
from schemas.listings import (
    BlacklistQuery,
    DelistIn,
    EntryOut,
    EntryPage,
    KeySupervisionPage,
    KeySupervisionQuery,
    PublicPage,
    PublicQuery,
)

blp = Blueprint("blacklist", __name__, url_prefix="/api/v1", description="Blacklists and key supervision")

READERS = (Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)


def _blacklist_stmt(subject: str | None, region: str | None, scope: str | None, active: bool | None) -> Any:
    stmt = select(Listing).where(Listing.list_kind == listings.BLACKLIST,
                                 in_region(Listing.region, scope), in_region(Listing.region, region))
    if subject:
        stmt = stmt.where(Listing.subject_type == subject)
    if active is not None:
        stmt = stmt.where(Listing.active.is_(active))
    return stmt


@blp.get("/blacklist")
@require_person(*READERS)
@blp.arguments(BlacklistQuery, location="query")
@blp.response(200, EntryPage)
def list_blacklist(args: dict[str, Any]) -> dict[str, Any]:
    """List blacklist entries (vehicles and fleets)."""
    session = read_db()
    stmt = _blacklist_stmt(args["subject"], args["region"], current_person().scope, args["active"])
    rows, next_cursor = page(session, stmt, Listing.listed_at, Listing.id, limit=args["limit"], cursor=args["cursor"])
    return {"items": listings.entry_views(session, rows), "next_cursor": next_cursor}


@blp.post("/blacklist/<int:entry_id>/delist")
@require_person(Role.TRANSPORT, Role.ENV_OFFICER)
@blp.arguments(DelistIn)
@blp.response(200, EntryOut)
def delist(body: dict[str, Any], entry_id: int) -> dict[str, Any]:
    """Take an entry off the blacklist, with a reason."""
    session = db()
    entry = session.get(Listing, entry_id, with_for_update=True)
    if entry is None or not current_person().sees(entry.region):
        raise NotFound("no such listing", code="listing_not_found")
    try:
        listings.delist(session, entry, reason=body["reason"].strip(), actor=current_person().actor)
    except listings.AlreadyDelisted:
        raise Conflict("this entry is already delisted", code="already_delisted") from None
    session.commit()
    return listings.entry_views(session, [entry])[0]


@blp.get("/key-supervision")
@require_person(*READERS)
@blp.arguments(KeySupervisionQuery, location="query")
@blp.response(200, KeySupervisionPage)
def key_supervision(args: dict[str, Any]) -> dict[str, Any]:
    """List vehicles under key supervision with their reasons."""
    session = read_db()
    rt = runtime()
    policy, tz = rt.settings.policy, rt.tz
    today = local_today(tz)
    ids = listings.key_supervision_ids(policy, today, args["reason"]).subquery()
    stmt = select(Vehicle).where(Vehicle.id.in_(select(ids.c.vid)), in_region(Vehicle.region, current_person().scope),
                                 in_region(Vehicle.region, args["region"]))
    rows, next_cursor = page(session, stmt, Vehicle.id, Vehicle.id, limit=args["limit"], cursor=args["cursor"])
    found = listings.key_supervision_of(session, rows, policy, today)
    items = [{"vehicle": {"plate": v.plate, "plate_color": v.plate_color}, "reasons": list(found[v.id]),
              "since": min(_instant(at, tz) for at in found[v.id].values())} for v in rows if v.id in found]
    return {"items": items, "next_cursor": next_cursor}


def _instant(at: date | datetime, tz: ZoneInfo) -> datetime:
    """A reason that starts on a local day starts at its local midnight."""
    return at if isinstance(at, datetime) else datetime.combine(at, time.min, tz)


# --- public disclosure ("向社会公开"): no token, active entries, no personal data ---------


def _public_stmt(args: dict[str, Any]) -> Any:
    return _blacklist_stmt(args["subject"], args["region"], None, True)


@blp.get("/public/blacklist")
@blp.arguments(PublicQuery, location="query")
@blp.response(200, PublicPage)
@public
def public_blacklist(args: dict[str, Any]) -> dict[str, Any]:
    """The public disclosure of the active blacklist (plates masked, no personal data)."""
    session = read_db()
    rows, next_cursor = page(session, _public_stmt(args), Listing.listed_at, Listing.id,
                             limit=args["limit"], cursor=args["cursor"])
    return {"items": listings.entry_views(session, rows, public_tz=runtime().tz), "next_cursor": next_cursor}


CSV_COLUMNS = ("subject_type", "plate", "plate_color", "fleet_code", "fleet_name", "rule", "listed_on")


@blp.get("/public/blacklist.csv")
@blp.arguments(PublicQuery, location="query")
@blp.response(200, description="the active blacklist as CSV (UTF-8 with BOM, for spreadsheets)")
@public
def public_blacklist_csv(args: dict[str, Any]) -> Response:
    """The public disclosure of the active blacklist as CSV."""
    session = read_db()
    rows = session.scalars(_public_stmt(args).order_by(Listing.listed_at.desc(), Listing.id.desc())).all()
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for view in listings.entry_views(session, rows, public_tz=runtime().tz):
        s = view["subject"]
        writer.writerow([safe_cell(cell) for cell in (
            s["type"], s.get("plate", ""), s.get("plate_color", ""), s.get("code", ""), s.get("name", ""),
            view["rule"], view["listed_on"].isoformat())])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=blacklist.csv"})
