"""Blacklists and key supervision API."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("blacklist", __name__, url_prefix="/api/v1", description="Blacklists and key supervision")
