"""The Flask edge of core: who is calling, what they may see, and the error shape.

Routes stay thin: they call `require_person(...)` or `require_station(...)`, parse with
the schemas, call a service with a `Session` and plain values, and serialise.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from core import identity, logs, regions
from core.db import DriverConnection, driver_sql
from core.errors import ApiError, Forbidden, TooManyRequests, Unauthorized
from core.runtime import Runtime
from schemas.common import Error, parse_json

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    return current_app.extensions["lantian"]


def db() -> Session:
    """The request's session (closed at teardown); services commit through it."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def read_db() -> Session:
    """A session for a read-only request (listings, plate queries, statistics): the standby's
    when one is configured, which may lag the primary by a moment, else the request's own."""
    rt = runtime()
    if rt.read_sessions is rt.sessions:
        return db()
    if "read_db" not in g:
        g.read_db = rt.read_sessions()
    return g.read_db


def driver() -> Any:
    """The request's psycopg connection in autocommit (PostgreSQL only; released at teardown),
    for the statements of every station request. See `core.db.DriverConnection`."""
    if "driver" not in g:
        g.driver = DriverConnection(runtime().engine)
    return g.driver.conn


def close_db(_exc: BaseException | None = None) -> None:
    for name in ("db", "read_db"):
        session = g.pop(name, None)
        if session is not None:
            session.close()
    connection = g.pop("driver", None)
    if connection is not None:
        connection.release()


@dataclass(frozen=True)
class Person:
    user_id: int
    username: str
    role: str
    region: str | None
    org_id: int | None

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    @property
    def scope(self) -> str | None:
        """Region this person is limited to; admins and people without a region see all."""
        return None if self.role == identity.Role.ADMIN else self.region

    def sees(self, region: str | None) -> bool:
        return regions.contains(self.scope, region)


def throttle() -> identity.Throttle:
    settings = runtime().settings
    return identity.Throttle(settings.signin_max_failures, settings.signin_max_failures_per_address,
                             settings.signin_window_s)


def sign_in(username: str, password: str) -> identity.User | None:
    """`identity.sign_in` for this request's address: 429 `too_many_attempts` with Retry-After."""
    try:
        return identity.sign_in(db(), username, password, request.remote_addr or "", throttle(),
                                datetime.now(UTC))
    except identity.TooManyAttempts as err:
        raise TooManyRequests(f"too many failed sign-ins; try again in {err.retry_after_s} s",
                              retry_after_s=err.retry_after_s) from None


def current_person() -> Person:
    return g.person


def _authenticate_person() -> Person:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required")
    claims = identity.decode_token(token.strip(), runtime().settings.secret_key)
    if claims is None:
        raise Unauthorized("the token is invalid or expired", code="invalid_token")
    # The account as it stands now decides, not the token: one primary-key read per request.
    user_id = int(claims["sub"])
    account = db().connection().execute(identity.PERSON_NOW, {"user_id": user_id}).first()
    if account is None or account[4] != claims["ver"]:
        raise Unauthorized("the token is no longer valid: the account was deactivated or changed; sign in again",
                           code="invalid_token")
    username, role, region, org_id, _version = account
    return Person(user_id, username, role, region, org_id)


def _authorize_person(roles: tuple[str, ...]) -> Person:
    """The bearer of the request's token, if their role is one of `roles` (admin always is)."""
    person = _authenticate_person()
    if person.role != identity.Role.ADMIN and person.role not in roles:
        raise Forbidden(f"role {person.role} may not do this")
    return person


# --- what the OpenAPI document says about each operation's caller -------------------------

# Security requirement names; lantian.openapi declares the schemes behind them.
BEARER_SCHEME = "bearerAuth"
STATION_SCHEMES = ("stationKey", "stationTimestamp", "stationSignature")
_AS_PERSON = {BEARER_SCHEME: []}
_AS_STATION = {name: [] for name in STATION_SCHEMES}  # all three headers together


def _refusal(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": Error}}}


_REFUSALS = {
    "401": _refusal("not signed in, or the signature or token does not hold"),
    "403": _refusal("signed in, but this caller may not do this"),
}


def _documented(wrapper: Callable[..., Any], view: Callable[..., Any], security: list[dict], who: str) -> Any:
    """Record who may call `view` in its OpenAPI operation: the security requirement, its
    refusals, and a line after the docstring's description (a view without a docstring stays
    without summary)."""
    if view.__doc__:
        wrapper.__doc__ = f"{inspect.cleandoc(view.__doc__)}\n\n{who}"
    return Blueprint.doc(security=security, **({"responses": _REFUSALS} if security else {}))(wrapper)


def _roles(roles: tuple[str, ...]) -> str:
    return ", ".join(f"`{role}`" for role in (*roles, identity.Role.ADMIN))


def public(view: F) -> F:
    """An operation anyone may call, on purpose (no token, no signature)."""
    return _documented(view, view, [], "**Who**: anyone; no token or signature.")


def require_person(*roles: str) -> Callable[[F], F]:
    """Bearer-token people with one of `roles` (admin always allowed)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.person = _authorize_person(roles)
            return view(*args, **kwargs)

        return _documented(wrapper, view, [_AS_PERSON], f"**Who**: a person with a bearer token, role {_roles(roles)}.")

    return decorate


def signed_path() -> str:
    """The path as the station sent it (undecoded), then `?` and the raw query when there is one."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        if not raw.startswith("/"):  # absolute-form request target
            parts = urlsplit(raw)
            raw = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = raw.partition("?")
        return path + ("?" + query if query else "")
    qs = request.query_string.decode("latin-1")
    return request.path + ("?" + qs if qs else "")


@dataclass(frozen=True)
class StationCaller:
    """The station that signed the request, as plain values (read with one Core query)."""

    id: int
    kind: str
    region: str
    code: str = ""
    # Set when accepted on remembered credentials (`require_station(remembered=True)`).
    unconfirmed: identity.StationKey | None = None


@dataclass(frozen=True)
class _StationRow:
    id: int
    code: str
    kind: str
    region: str
    sealed: str
    suspended: bool
    secret: str  # opened from `sealed` once, when the row was read


# Core, not ORM, and on PostgreSQL straight through the driver: this runs on every station request.
_STATION_COLUMNS = identity.Station.__table__.c
_STATION_BY_KEY = select(
    _STATION_COLUMNS.id, _STATION_COLUMNS.code, _STATION_COLUMNS.kind, _STATION_COLUMNS.region, _STATION_COLUMNS.secret,
    _STATION_COLUMNS.suspended,
).where(_STATION_COLUMNS.key_id == bindparam("key_id"))

def _read_station(key_id: str) -> _StationRow | None:
    rt = runtime()
    if rt.postgres:
        row = driver().execute(driver_sql(_STATION_BY_KEY), {"key_id": key_id}).fetchone()
    else:
        row = db().connection().execute(_STATION_BY_KEY, {"key_id": key_id}).first()
    if row is None:
        rt.station_keys.pop(key_id, None)
        return None
    station_id, code, kind, region, sealed, suspended = row
    found = _StationRow(station_id, code, kind, region, sealed, suspended, rt.station_box.open(sealed))
    if rt.postgres:
        rt.station_keys[key_id] = found
    return found


def _authenticate_station(kind: str | None, *, remembered: bool = False) -> StationCaller:
    key_id = request.headers.get("X-Station-Key", "")
    timestamp = request.headers.get("X-Timestamp", "")
    signature = request.headers.get("X-Signature", "")
    if not (key_id and timestamp and signature):
        raise Unauthorized("X-Station-Key, X-Timestamp and X-Signature are required", code="signature_required")
    rt = runtime()
    problem = identity.timestamp_problem(timestamp, int(time.time()), rt.settings.signature_window_s)
    if problem:
        raise Unauthorized(problem, code="stale_timestamp")
    body = request.get_data(cache=True)

    def signed_with(secret: str) -> bool:
        return bool(secret) and identity.signature_matches(
            secret, signature, request.method, signed_path(), timestamp, body)

    known = rt.station_keys.get(key_id) if remembered else None
    if known is not None and not known.suspended and known.kind == kind and signed_with(known.secret):
        return StationCaller(known.id, known.kind, known.region, known.code,
                             identity.StationKey(key_id, known.sealed))
    # Every refusal is decided on the station as stored now.
    row = _read_station(key_id)
    if row is None:
        raise Unauthorized(f"no station has the key id {key_id[:64]!r} (X-Station-Key)", code="unknown_key")
    if not signed_with(row.secret):
        raise Unauthorized("the signature does not match", code="bad_signature")
    if row.suspended:
        raise Forbidden("this station is suspended", code="station_suspended")
    if kind and row.kind != kind:
        raise Forbidden(f"only {kind} stations may post here", code="wrong_station_kind")
    return StationCaller(row.id, row.kind, row.region, row.code)


def confirm_station(kind: str | None) -> StationCaller:
    """Authenticate the request again on the station as stored now (401/403 when it no longer
    holds), after a write guarded by `StationCaller.unconfirmed` did not happen."""
    return _authenticate_station(kind)


def require_station(kind: str | None = None, *, remembered: bool = False) -> Callable[[F], F]:
    """Signed station requests of `kind`. With `remembered` (PostgreSQL), a request signed with
    the credentials this process last read for its key is accepted without reading the
    station again: the view must then make its write conditional on them
    (`g.station.unconfirmed`) and call `confirm_station` when it did not happen."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.station = _authenticate_station(kind, remembered=remembered)
            return view(*args, **kwargs)

        stations = f"a `{kind}` station" if kind else "a station"
        return _documented(wrapper, view, [_AS_STATION], f"**Who**: {stations}, signing the request (HMAC headers).")

    return decorate


def station_or_person(*roles: str) -> Callable[[F], F]:
    """Readable by a signed station (its own records) or by people with `roles`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.headers.get("X-Station-Key"):
                g.station = _authenticate_station(None)
                g.person = None
            else:
                g.station = None
                g.person = _authorize_person(roles)
            return view(*args, **kwargs)

        return _documented(wrapper, view, [_AS_STATION, _AS_PERSON],
                           f"**Who**: the station that sent it (signed), or a person with role {_roles(roles)}.")

    return decorate


# --- parsing -----------------------------------------------------------------------------


class JsonParser(FlaskParser):
    """Reads the body as JSON whatever Content-Type a station's firmware sends."""

    def _raw_load_json(self, req: Any) -> Any:
        data = req.get_data(cache=True)
        return parse_json(data) if data else webargs_core.missing


Blueprint.ARGUMENTS_PARSER = JsonParser()


def json_body(*, check_text: bool = True) -> Any:
    """The raw JSON body: 400 when it is not JSON at all."""
    return parse_json(request.get_data(cache=True), check_text=check_text)


def validation_fields(err: ValidationError) -> dict[str, Any]:
    messages = err.messages
    return messages if isinstance(messages, dict) else {"_schema": messages}


# --- errors ------------------------------------------------------------------------------


def error_response(status: int, code: str, message: str, fields: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    return response


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "too_many_requests",
}


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        response = error_response(err.status, err.code, err.message, err.fields)
        response.headers.update(getattr(err, "headers", {}))
        return response

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError) -> Response:
        return error_response(422, "validation_error", "the request is not valid", validation_fields(err))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        data = getattr(err, "data", None) or {}
        messages = data.get("messages")
        if status == 400 and messages and "json" in messages and messages["json"] == ["Invalid JSON body."]:
            return error_response(400, "malformed_json", "the body is not valid JSON")
        if status == 422 and messages:
            # webargs nests messages by location; the API shows the fields themselves.
            fields: dict[str, Any] = {}
            for per_location in messages.values():
                fields.update(per_location if isinstance(per_location, dict) else {"_schema": per_location})
            return error_response(422, "validation_error", "the request is not valid", fields)
        return error_response(status, _HTTP_CODES.get(status, "http_error"), err.description or err.name)

    @app.errorhandler(DBAPIError)
    def _database(err: DBAPIError) -> Response:
        if err.connection_invalidated:  # the pool already replaced the connection: a retry works
            return _lost(err.orig)
        return _unexpected(err)

    def _lost(err: BaseException | None) -> Response:
        log.warning("database connection lost: %s", err)
        response = error_response(503, "database_unavailable", "the database connection was lost; retry")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(psycopg.OperationalError)
    def _driver_lost(err: psycopg.OperationalError) -> Response:
        connection = g.get("driver")
        if connection is not None and connection.broken:  # released (and replaced) at teardown
            return _lost(err)
        return _unexpected(err)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


# --- one log line per request ------------------------------------------------------------

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_access = logs.get("lantian.request")


def install_request_log(app: Flask) -> None:
    """A JSON line per request: its id (X-Request-ID, sent back), method, path, the station
    code or username, status and duration; plates in the path are masked (core.logs)."""

    @app.before_request
    def _start() -> None:
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        station, person = g.get("station"), g.get("person")
        _access.info(
            "request", request_id=g.get("request_id"), method=request.method, path=request.path,
            status=response.status_code, duration_ms=round((time.perf_counter() - g.get("started", 0.0)) * 1000, 2),
            station=station.code if station else None, user=person.username if person else None,
        )
        return response
