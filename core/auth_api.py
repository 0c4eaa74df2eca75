"""People sign in here and get a bearer token."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core import identity
from core.errors import Unauthorized
from core.web import db, public, runtime
from schemas.auth import TokenIn, TokenOut

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Bearer tokens for people")


@blp.post("/token")
@blp.arguments(TokenIn)
@blp.response(200, TokenOut)
@public
def token(body: dict[str, Any]) -> dict[str, Any]:
    """Sign in: a bearer token for a person."""
    user = identity.authenticate(db(), body["username"], body["password"])
    if user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    settings = runtime().settings
    token = identity.issue_token(user, settings.secret_key, settings.token_ttl_s)
    return {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_s}
