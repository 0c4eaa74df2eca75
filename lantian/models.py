"""Every table, for Alembic and for tests that compare models with migrations."""

from __future__ import annotations

from sqlalchemy import MetaData


def metadata() -> MetaData:
    import remote_sensing.models  # noqa: F401
    from core.db import Base

    return Base.metadata
