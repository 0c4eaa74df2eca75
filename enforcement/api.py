"""All enforcement blueprints, for the app factory."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    from enforcement import vehicles_api

    return [vehicles_api.blp]
