"""Black-smoke review API."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("black_smoke_reviews", __name__, url_prefix="/api/v1", description="Black-smoke review")
