"""Supervision statistics API: the figures behind the supervision dashboard."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_smorest import Blueprint

from core.identity import Role
from core.web import current_person, read_db, require_person, runtime
from enforcement import stats
from enforcement.cases import local_today
from enforcement.targets import month_of
from schemas.stats import RegionQuery, SupervisionQuery

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats", description="Supervision statistics")

READERS = (Role.POLICE, Role.ENV_OFFICER, Role.TRANSPORT)


def _month(query: dict[str, Any]) -> date:
    return query["month"] or local_today(runtime().tz).replace(day=1)


@blp.get("/supervision")
@require_person(*READERS)
@blp.arguments(SupervisionQuery, location="query")
def supervision(query: dict[str, Any]) -> dict[str, Any]:
    """The month against the plans' targets: distinct vehicles tested, diesel coverage this
    month and this heating season, per region and per station."""
    rt = runtime()
    scope = current_person().scope
    return stats.supervision(read_db(), _month(query), query["region"], scope, rt.tz, rt.settings.policy)


@blp.get("/exceedance")
@require_person(*READERS)
@blp.arguments(SupervisionQuery, location="query")
def exceedance(query: dict[str, Any]) -> dict[str, Any]:
    """Exceedance rate of the month's valid remote-sensing measurements by fuel type and pollutant."""
    return stats.exceedance(read_db(), _month(query), query["region"], current_person().scope, runtime().tz)


@blp.get("/stations")
@require_person(*READERS)
@blp.arguments(SupervisionQuery, location="query")
def stations(query: dict[str, Any]) -> dict[str, Any]:
    """Remote-sensing stations by valid share of the month, lowest first, with their top invalid reasons."""
    month = _month(query)
    where = stats.Scope(current_person().scope, query["region"])
    return {"region": query["region"], "month": month.strftime("%Y-%m"),
            "items": stats.stations(read_db(), month_of(month), where, runtime().tz), "next_cursor": None}


@blp.get("/enforcement")
@require_person(*READERS)
@blp.arguments(RegionQuery, location="query")
def enforcement(query: dict[str, Any]) -> dict[str, Any]:
    """Open and overdue cases and active listings, today."""
    return stats.enforcement(read_db(), query["region"], current_person().scope, local_today(runtime().tz))
