"""All enforcement blueprints, for the app factory."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    from enforcement import (
        blacklist_api,
        cases_api,
        registry_api,
        reviews_api,
        stats_api,
        supervisory_api,
        vehicles_api,
        violations_api,
    )

    return [vehicles_api.blp, violations_api.blp, cases_api.blp, supervisory_api.blp, blacklist_api.blp,
            reviews_api.blp, registry_api.blp, stats_api.blp]
