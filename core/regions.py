"""Administrative region codes (6 digits): a province or city code contains its children."""

from __future__ import annotations

import re

REGION_RE = re.compile(r"[0-9]{6}")  # ASCII digits; use fullmatch


def region_prefix(code: str) -> str:
    """The digits that every child shares: 320000 -> 32, 320200 -> 3202, 320281 -> 320281."""
    prefix = code
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return prefix


def contains(scope: str | None, region: str | None) -> bool:
    """Whether a person scoped to `scope` may see something in `region` (None scope sees all)."""
    if scope is None:
        return True
    return region is not None and region.startswith(region_prefix(scope))
