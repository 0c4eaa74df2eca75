"""Bulk fleet upserts from the transport bureau (the vehicles upsert is in enforcement/registry_api.py:
it re-evaluates listings, and core may not import enforcement)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import registry, registry_scope
from core.identity import Role
from core.web import current_person, db, require_person
from schemas.registry import FleetsIn, UpsertOut

blp = Blueprint("registry", __name__, url_prefix="/api/v1/registry", description="Vehicle and fleet registry")


@blp.put("/fleets")
@require_person(Role.TRANSPORT)
@blp.arguments(FleetsIn)
@blp.response(200, UpsertOut)
@blp.alt_response(403, description="forbidden, outside_your_region (the whole batch refused, nothing stored)")
def put_fleets(body: dict[str, Any]) -> registry.UpsertCount:
    """Create or update transport fleets by `code`.

    A fleet is a transport enterprise, keyed by its 18-character unified social credit code. A
    writer with a region writes only fleets of it, into it (403 `outside_your_region`, nothing
    stored).
    """
    session = db()
    registry_scope.check_fleets(session, current_person().scope, body["fleets"])
    count = registry.upsert_fleets(session, body["fleets"], actor=current_person().actor)
    session.commit()
    return count

