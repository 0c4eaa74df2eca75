"""What the officers' pages share: sign-in, CSRF, the language and local times, static files.

Server-rendered with a signed-cookie session (SECRET_KEY is settings.secret_key) and a CSRF
token per session checked on every POST. Pages are in Chinese by default and in English on
request (`?lang=en`, remembered in a cookie, else the browser's Accept-Language), through
Flask-Babel and the catalogues in `enforcement/translations`. Times are shown in
settings.timezone; the APIs stay UTC. No inline script or style: a strict Content Security
Policy can forbid both, so the CSS and JS are static files of this package.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from babel.dates import get_timezone_name
from flask import Blueprint, Flask, abort, redirect, render_template, request, session, url_for
from flask_babel import Babel, format_datetime, get_locale, gettext, lazy_gettext
from werkzeug.wrappers import Response

from core.errors import TooManyRequests
from core.identity import User
from core.web import db, runtime, sign_in

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 86400
TRANSLATIONS = Path(__file__).with_name("translations")

P = ParamSpec("P")
T = TypeVar("T")

# Static files (CSS, the lightbox and shortcut script) and the hooks of every page.
bp = Blueprint("console", __name__, static_folder="static", static_url_path="/console/static",
               template_folder="templates")


def select_locale() -> str:
    wanted = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if wanted in LOCALES:
        return wanted
    return request.accept_languages.best_match(LOCALES, default=DEFAULT_LOCALE) or DEFAULT_LOCALE


@bp.record_once
def _install(state: Any) -> None:
    app: Flask = state.app
    # The session cookie is only ever needed by same-site navigation and form posts.
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    Babel(app, locale_selector=select_locale, default_locale=DEFAULT_LOCALE,
          default_timezone=app.extensions["lantian"].settings.timezone,
          default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.filters["localtime"] = localtime


def localtime(moment: datetime | None) -> str:
    """"2026-12-02 02:24:07 (中国标准时间)": the instant in settings.timezone, its zone named in
    the page's language."""
    if moment is None:
        return "–"
    local = moment.astimezone(runtime().tz)
    zone = get_timezone_name(local, width="long", locale=get_locale())
    return f"{format_datetime(moment, 'yyyy-MM-dd HH:mm:ss')} ({zone})"


# Names of the stable codes the pages show (the APIs answer the codes).
LABELS: dict[str, dict[str, Any]] = {
    "plate_color": {"blue": lazy_gettext("blue"), "yellow": lazy_gettext("yellow"), "green": lazy_gettext("green"),
                    "yellow_green": lazy_gettext("yellow-green"), "white": lazy_gettext("white"),
                    "black": lazy_gettext("black")},
    "fuel_type": {"gasoline": lazy_gettext("gasoline"), "diesel": lazy_gettext("diesel"), "gas": lazy_gettext("gas"),
                  "hybrid": lazy_gettext("hybrid"), "electric": lazy_gettext("electric")},
    "reason": {"speed_out_of_range": lazy_gettext("speed out of range"),
               "acceleration_out_of_range": lazy_gettext("acceleration out of range"),
               "vsp_out_of_range": lazy_gettext("VSP out of range"), "wind_too_strong": lazy_gettext("wind too strong"),
               "temperature_out_of_range": lazy_gettext("temperature out of range"),
               "humidity_too_high": lazy_gettext("humidity too high"),
               "co2_signal_too_low": lazy_gettext("CO2 signal too low"),
               "plate_unreadable": lazy_gettext("plate unreadable"),
               "station_uncalibrated": lazy_gettext("station not calibrated"),
               "station_suspended": lazy_gettext("station suspended"), "no_tailpipe": lazy_gettext("no tailpipe")},
    "case_status": {"open": lazy_gettext("open"), "notified": lazy_gettext("notified"),
                    "repaired": lazy_gettext("repaired"), "closed": lazy_gettext("closed")},
    "rule": {"three_strikes": lazy_gettext("three strikes in a cycle"),
             "fleet_ten_percent": lazy_gettext("ten percent of a fleet"),
             "no_remote_obd": lazy_gettext("no remote OBD"), "overdue_case": lazy_gettext("overdue case")},
}


def label(kind: str, code: str | None) -> str:
    """The name of a code in the page's language; an unknown code is shown as it is."""
    if code is None:
        return "–"
    return str(LABELS.get(kind, {}).get(code, code))


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "page_locale": select_locale, "label": label,
            "html_lang": lambda: str(get_locale()).replace("_", "-")}


class Console:
    """A signed-in area of pages on `bp`, for people with one of `roles`: adds its
    `login` and `logout` views, the CSRF check, and the language cookie."""

    def __init__(self, bp: Blueprint, roles: tuple[str, ...], home: str, title: Callable[[], str],
                 refused: Callable[[], str]) -> None:
        self.bp, self.roles, self.home, self.title, self.refused = bp, roles, home, title, refused
        bp.before_request(self._check_csrf)
        bp.after_request(_remember_language)
        bp.add_url_rule("/login", "login", self.login, methods=["GET", "POST"])
        bp.add_url_rule("/logout", "logout", self.logout, methods=["POST"])

    @staticmethod
    def _check_csrf() -> None:
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
                abort(400, gettext("The form has expired; reload the page."))

    def person(self) -> User | None:
        """The signed-in person, re-read so a deactivated or demoted account is out at once."""
        user_id = session.get("user_id")
        user = db().get(User, user_id) if user_id is not None else None
        # A session from before a deactivation or a role, region or password change is over.
        current = user is not None and user.active and user.token_version == session.get("ver")
        return user if current and user.role in self.roles else None

    def signed_in(self, view: Callable[Concatenate[User, P], T]) -> Callable[P, T | Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Response:
            user = self.person()
            if user is None:
                return redirect(url_for(f"{self.bp.name}.login"))
            return view(user, *args, **kwargs)

        return wrapper

    def login(self) -> str | Response | tuple[str, int]:
        error = None
        if request.method == "POST":
            try:  # throttled like the API's sign-in (core.web.sign_in)
                user = sign_in(request.form.get("username", ""), request.form.get("password", ""))
            except TooManyRequests as err:
                return render_template("pages/login.html", error=err.message, title=self.title(),
                                       action=url_for(f"{self.bp.name}.login")), 429
            if user is not None and user.role in self.roles:
                session.clear()  # a fresh session (and CSRF token) for the signed-in person
                session["user_id"], session["ver"] = user.id, user.token_version
                return redirect(url_for(self.home))
            error = self.refused()
        return render_template("pages/login.html", error=error, title=self.title(),
                               action=url_for(f"{self.bp.name}.login"))

    def logout(self) -> Response:
        session.clear()
        return redirect(url_for(f"{self.bp.name}.login"))


def _remember_language(response: Response) -> Response:
    wanted = request.args.get("lang")
    if wanted in LOCALES:
        response.set_cookie(LANG_COOKIE, wanted, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response
