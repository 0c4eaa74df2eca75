"""Black-smoke snapshot upload API (stations)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("black_smoke", __name__, url_prefix="/api/v1/black-smoke", description="Black-smoke snapshots")
