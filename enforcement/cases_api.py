"""I/M cases API."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="I/M cases")
