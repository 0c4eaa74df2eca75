"""Supervisory tests API."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("supervisory_tests", __name__, url_prefix="/api/v1", description="Supervisory tests")
