"""The application factory: builds everything from a Settings object, nothing at import."""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime
from typing import Any

from flask import Flask, Request, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import text
from werkzeug.routing import IntegerConverter

from core import auth_api, json_format, logs, registry_api
from core import runtime as runtime_mod
from core.errors import ApiError
from core.settings import Settings
from core.web import close_db, install_error_handlers, install_request_log, runtime
from lantian import metrics, openapi
from schemas.common import UNSTORABLE_MESSAGE, has_unstorable

log = logging.getLogger(__name__)


def _blueprints() -> list[Any]:
    # Imported here so that importing lantian does not pull every model at import time.
    from enforcement import api as enforcement_api
    from remote_sensing import api as rs_api
    from remote_sensing import black_smoke_api

    return [auth_api.blp, registry_api.blp, rs_api.blp, black_smoke_api.blp, *enforcement_api.blueprints()]


class RowId(IntegerConverter):
    """`<int:...>` path parts fit a 64-bit id: anything larger is simply not found."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


class JSONProvider(DefaultJSONProvider):
    """Dates as YYYY-MM-DD and times as RFC 3339 in UTC, whatever the view returns.

    Written by orjson through core.json_format (a case page of 600 violations spent a third
    of its time in the standard encoder); what orjson refuses (integers beyond 64 bits)
    falls back to the standard encoder."""

    ensure_ascii = False
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime | date | json_format.Raw):
            return json_format.default(o)
        return DefaultJSONProvider.default(o)

    def _encode(self, obj: Any) -> bytes:
        return json_format.encode(obj, self.default)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:
            return self._encode(obj).decode()
        kwargs.setdefault("default", lambda o: json_format.standard(o, self.default))
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self._app.debug and self.compact is not False:
            return super().response(*args, **kwargs)  # indented, for people reading it
        body = self._encode(self._prepare_response_obj(args, kwargs)) + b"\n"
        return self._app.response_class(body, mimetype=self.mimetype)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only for a request that carries the cookie.

    Only the review page signs people in with a cookie; the API (stations, bearer tokens)
    sends none, and building the cookie signer cost about a fifth of a single-event POST's
    CPU in-process."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def create_app(settings: Settings | None = None) -> Flask:
    rt = runtime_mod.build(settings or Settings())  # refuses to start without keys in production
    settings = rt.settings
    app = Flask("lantian", instance_relative_config=False)
    app.json = JSONProvider(app)
    app.session_interface = CookieSessions()
    app.url_map.converters["int"] = RowId
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # The review page's cookie: never read by scripts, sent on same-site navigation only,
        # and over https only when served over https.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        API_TITLE="Lantian",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS=openapi.spec_options(settings),
    )
    runtime_mod.activate(rt)
    app.extensions["lantian"] = rt
    api = openapi.LantianApi(app)
    for blp in _blueprints():
        api.register_blueprint(blp)
    # Plain Flask blueprints: pages for people, not part of the API document.
    from enforcement import dashboard_page, pages, review_page

    for page in (pages.bp, review_page.bp, dashboard_page.bp):
        app.register_blueprint(page)
    logs.install()
    install_request_log(app)
    install_error_handlers(app)
    _page_headers(app)
    _body_limits(app, settings)
    _refuse_unstorable(app)
    app.teardown_appcontext(close_db)
    metrics.install(app)
    _operations(app)
    openapi.install(app, api)
    return app


def _page_headers(app: Flask) -> None:
    """Every HTML page: a CSP that runs only the page's own scripts (inline ones need the
    request's nonce, `csp_nonce()` in templates), and no framing by any other site."""

    def csp_nonce() -> str:
        if "csp_nonce" not in g:
            g.csp_nonce = secrets.token_urlsafe(16)
        return g.csp_nonce

    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = (
                f"default-src 'self'; script-src 'self' 'nonce-{csp_nonce()}'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            )
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "same-origin"
        return response


def _body_limits(app: Flask, settings: Settings) -> None:
    """1 MiB for a JSON body; uploads of images and registry bulk loads may be larger."""
    multipart = settings.max_images * settings.max_image_bytes + 1024 * 1024
    registry = 5000 * 2048  # a full registry call of 5,000 vehicles

    @app.before_request
    def _limit() -> None:
        if request.mimetype == "multipart/form-data":
            request.max_content_length = multipart
        elif request.path.startswith("/api/v1/registry/"):
            request.max_content_length = registry
        else:
            request.max_content_length = settings.max_body_bytes


def _refuse_unstorable(app: Flask) -> None:
    """NUL in a path, query or plain form cannot be stored (PostgreSQL text): refuse it up front.

    JSON bodies are checked where they are parsed (`schemas.common.parse_json`); multipart
    forms are left to their routes, which must read the raw body first for signatures.
    """

    @app.before_request
    def _check() -> None:
        texts = [request.path, *request.args.keys(), *request.args.values()]
        if request.mimetype == "application/x-www-form-urlencoded":
            texts += [*request.form.keys(), *request.form.values()]
        if has_unstorable(texts):
            raise ApiError(UNSTORABLE_MESSAGE, code="nul_character")


def _operations(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        rt = runtime()
        engines = {"database": rt.engine}
        if rt.read_engine is not rt.engine:
            engines["read_database"] = rt.read_engine
        for name, engine in engines.items():
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready
                checks[name] = f"error: {type(exc).__name__}"
        if rt.redis is not None:
            try:
                rt.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        else:
            checks["redis"] = "not configured (jobs run inline)"
        ready = all(not v.startswith("error") for v in checks.values())
        return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), 200 if ready else 503
