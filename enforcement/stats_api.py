"""Supervision statistics API."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.identity import Role
from core.web import current_person, read_db, require_person, runtime
from enforcement import stats
from enforcement.cases import local_today
from schemas.stats import SupervisionQuery

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats", description="Supervision statistics")


@blp.get("/supervision")
@require_person(Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)
@blp.arguments(SupervisionQuery, location="query")
def supervision(query: dict[str, Any]) -> dict[str, Any]:
    tz = runtime().tz
    month = stats.Month(query["month"] or local_today(tz).replace(day=1))
    return stats.supervision(read_db(), month, query["region"], current_person().scope, tz)
