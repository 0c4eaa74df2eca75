"""The OpenAPI document's framing (description, security schemes) and the /docs page.

The operations themselves are generated from the blueprints and the marshmallow schemas;
`core.web`'s `require_person`, `require_station`, `station_or_person` and `public` state
each operation's security. The page is Swagger UI from the flask-swagger-ui package,
served by Lantian itself: bureau networks are closed, so nothing comes from a CDN.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, render_template, send_from_directory
from flask_smorest import Api

from core import identity
from core.settings import Settings
from core.web import BEARER_SCHEME, STATION_SCHEMES
from schemas.common import Error

SPEC_PATH = "/api/v1/openapi.json"
SWAGGER_UI_DIR = str(resources.files("flask_swagger_ui") / "dist")


class LantianApi(Api):
    """flask-smorest's Api, documenting errors in Lantian's shape (`{"error": {...}}`)."""

    ERROR_SCHEMA = Error


@dataclass(frozen=True)
class SigningExample:
    """The worked example of the signing recipe, shown in the document and in docs/stations.md
    (a test keeps both equal to what the server verifies)."""

    key_id: str = "k_0123456789abcdef"
    secret: str = "Zm9yLWRvY3Mtb25seS1ub3QtYS1yZWFsLXNlY3JldA"
    method: str = "POST"
    path: str = "/api/v1/remote-sensing/events"
    timestamp: str = "1795306530"  # 2026-11-22T08:15:30+08:00
    body: str = (
        '{"event_id":"RS001-20261122-000123","measured_at":"2026-11-22T08:15:30+08:00","lane":1,'
        '"plate":{"number":"苏B12345","color":"yellow","confidence":0.97},"speed_kmh":42.5,'
        '"acceleration_ms2":0.3,"measurements":{"no_ppm":820,"opacity_pct":12.5}}'
    )

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    @property
    def string_to_sign(self) -> str:
        return identity.signing_string(self.method, self.path, self.timestamp, self.body.encode()).decode()

    @property
    def signature(self) -> str:
        return identity.sign(self.secret, self.method, self.path, self.timestamp, self.body.encode())


EXAMPLE = SigningExample()


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def description(settings: Settings) -> str:
    """The document's introduction (Markdown): who calls what, and how stations sign."""
    window = settings.signature_window_s
    return f"""\
Lantian takes what roadside remote-sensing stations and black-smoke cameras measure, judges
it against the emission limits and runs the I/M closed loop (notice, penalty, repair, retest)
and the blacklists. Times are RFC 3339 with an offset and answered in UTC; dates are
`YYYY-MM-DD`; money is integer yuan. Every error is
`{{"error": {{"code": "snake_case_code", "message": "...", "fields": {{...}}}}}}` (`fields` only
for validation errors). Lists answer `{{"items": [...], "next_cursor": "..." | null}}`.

## People: bearer tokens

`POST /api/v1/auth/token` with `{{"username", "password"}}` answers an `access_token`; send it
as `Authorization: Bearer <token>` (the **bearerAuth** scheme under *Authorize*). Each
operation says which roles may call it; a wrong role answers 403, no or a bad token 401.

## Stations: signed requests

A station signs every request with the `key_id` and `secret` that
`lantian stations create` printed, in three headers (the **stationKey**, **stationTimestamp**
and **stationSignature** schemes, always sent together):

    X-Station-Key: <key_id>
    X-Timestamp:   <unix time in seconds, within {window} s of the server clock>
    X-Signature:   hex(HMAC_SHA256(secret, METHOD + "\\n" + PATH + "\\n" + TIMESTAMP + "\\n" + hex(SHA256(body))))

- the HMAC key is the UTF-8 bytes of the secret exactly as printed; hex is lower case;
- `PATH` is the path as sent, followed by `?` and the raw query string only when there is one;
- `body` is the exact bytes sent: for `multipart/form-data` the whole multipart body, for a
  `GET` the empty string (its SHA-256 is `{hashlib.sha256(b"").hexdigest()}`).

A missing header, an unknown key, a bad signature or a stale timestamp: 401; a suspended
station: 403.

Worked example: key id `{EXAMPLE.key_id}`, secret `{EXAMPLE.secret}`,
`{EXAMPLE.method} {EXAMPLE.path}` at `X-Timestamp: {EXAMPLE.timestamp}` with this body
(UTF-8, no trailing newline):

{_indent(EXAMPLE.body)}

Its SHA-256 is `{EXAMPLE.body_sha256}`, so the string to sign is

{_indent(EXAMPLE.string_to_sign)}

and `X-Signature: {EXAMPLE.signature}`.

`lantian sign --key-id K --secret-stdin --method POST --path /api/v1/remote-sensing/events
--body-file event.json` prints the three headers for a body (paste them under *Authorize* to
try a station operation here, sending exactly the body you signed); the Python station client
`lantian.client.StationClient` signs, retries and keeps an offline buffer. The station guide,
`docs/stations.md` beside the source, walks through all of it.

## Sending again is safe

`event_id` is the idempotency key of each event and snapshot: the same `event_id` with the
same body answers 200 with the stored `id`; with a different body 409 `event_id_conflict`.
So a station retries on network errors and 5xx with the same body, and treats other 4xx as
final for that record.
"""


def spec_options(settings: Settings) -> dict[str, Any]:
    """`API_SPEC_OPTIONS`: merged into the document's top level by apispec."""
    return {"info": {"description": description(settings)}}


def _security_schemes(api: Api) -> None:
    api.spec.components.security_scheme(BEARER_SCHEME, {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "People: the `access_token` from `POST /api/v1/auth/token`.",
    })
    headers = {
        "X-Station-Key": "The station's key id, as printed by `lantian stations create`.",
        "X-Timestamp": "Unix time in seconds when the request was signed.",
        "X-Signature": "Lower-case hex HMAC-SHA256 of the string to sign (see the introduction).",
    }
    for name, (header, text) in zip(STATION_SCHEMES, headers.items(), strict=True):
        api.spec.components.security_scheme(name, {"type": "apiKey", "in": "header", "name": header,
                                                   "description": text})


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation as the page's fallback lists it (for browsers without JavaScript)."""
    return [
        {"method": method.upper(), "path": path, "summary": op.get("summary", ""),
         "who": " or ".join("+".join(req) for req in op.get("security", [])) or "public"}
        for path, ops in spec["paths"].items() for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def install(app: Flask, api: Api) -> None:
    """Security schemes in the document, and the page at /docs."""
    _security_schemes(api)
    bp = Blueprint("docs_page", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/docs/static")

    @bp.get("/docs")
    def page() -> str:
        spec = api.spec.to_dict()
        return render_template("api_docs/page.html", spec=spec, spec_url=SPEC_PATH, operations=_operations(spec))

    @bp.get("/docs/swagger-ui/<path:name>")
    def swagger_ui(name: str) -> Response:
        return send_from_directory(SWAGGER_UI_DIR, name, max_age=86400)

    app.register_blueprint(bp)
