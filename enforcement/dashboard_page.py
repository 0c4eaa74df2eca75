"""The supervision dashboard: how a region stands against the plans' targets.

For env_officer, transport and police (region-scoped; admin sees all), signed in like the
review page. The figures are those of the `/api/v1/stats/...` endpoints (the same service
functions); the charts are SVG images drawn server-side (`enforcement.charts`).
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from core.identity import Role, User
from core.web import read_db, runtime
from enforcement import charts, stats
from enforcement.cases import local_today
from enforcement.pages import LABELS, Console
from enforcement.targets import month_of
from schemas.stats import SupervisionQuery

bp = Blueprint("dashboard_page", __name__, url_prefix="/dashboard", template_folder="templates")

console = Console(
    bp, (Role.ENV_OFFICER, Role.TRANSPORT, Role.POLICE, Role.ADMIN), "dashboard_page.index",
    lambda: _("Supervision dashboard"),
    lambda: _("Wrong username or password, or not an environment, transport or police officer."),
)
# An SVG shown as an image runs nothing; opened on its own it may not either.
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_query_schema = SupervisionQuery()


def _query() -> tuple[date, str | None]:
    try:
        query = _query_schema.load({k: v for k, v in request.args.items() if k in ("month", "region") and v})
    except ValidationError as err:
        abort(400, "; ".join(f"{k}: {' '.join(v)}" for k, v in err.normalized_messages().items()))
    return query["month"] or local_today(runtime().tz).replace(day=1), query["region"]


def _scope(user: User) -> str | None:
    return None if user.role == Role.ADMIN else user.region


@bp.get("")
@console.signed_in
def index(user: User) -> str:
    rt = runtime()
    month, region = _query()
    figures = stats.overview(read_db(), month, region, _scope(user), rt.tz, rt.settings.policy, local_today(rt.tz))
    args = {"month": month.strftime("%Y-%m"), **({"region": region} if region else {})}
    return render_template("dashboard/index.html", user=user, chart_args=args, region=region, **figures)


@bp.get("/charts/<any(quota, winter, exceedance, stations):name>.svg")
@console.signed_in
def chart(user: User, name: str) -> Response:
    rt = runtime()
    month, region = _query()
    scope = _scope(user)
    svg: bytes
    if name == "exceedance":
        figures = stats.exceedance(read_db(), month, region, scope, rt.tz)
        fuels = {code: str(text) for code, text in LABELS["fuel_type"].items()}
        svg = charts.exceedance(figures["by_fuel"], title=_("Exceedance rate by fuel and pollutant"), fuel_names=fuels)
    elif name == "stations":
        rows = stats.stations(read_db(), month_of(month), stats.Scope(scope, region), rt.tz)
        svg = charts.stations(rows, title=_("Valid share of each station's measurements"), valid=_("valid"))
    else:
        figures = stats.supervision(read_db(), month, region, scope, rt.tz, rt.settings.policy)
        titles = {"quota": _("Distinct vehicles tested this month"),
                  "winter": _("Share of the diesel fleet tested this winter")}
        svg = charts.targets(figures["regions"], name, title=titles[name], tested=_("tested"), target=_("target"))
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_POLICY
    response.headers["Cache-Control"] = "private, no-store"
    return response
