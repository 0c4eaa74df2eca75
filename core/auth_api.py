"""People sign in here and get a bearer token."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import identity
from core.errors import Unauthorized
from core.web import public, runtime, sign_in
from schemas.auth import TokenIn, TokenOut

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Bearer tokens for people")


@blp.post("/token")
@blp.arguments(TokenIn)
@blp.response(200, TokenOut)
@blp.alt_response(429, description="too many failed sign-ins for this username or address (Retry-After)")
@public
def token(body: dict[str, Any]) -> dict[str, Any]:
    """Sign in: a bearer token for a person."""
    user = sign_in(body["username"], body["password"])
    if user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    settings = runtime().settings
    token = identity.issue_token(user, settings.secret_key, settings.token_ttl_s)
    return {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_s}
