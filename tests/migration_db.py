"""A scratch database of the suite's kind, for upgrading data made by an older migration."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, create_engine, text

from lantian.cli import alembic_config


def _engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


@contextmanager
def scratch_database(suite_url: str, tmp: Path) -> Iterator[str]:
    """An empty database on the suite's server (PostgreSQL) or in `tmp` (SQLite), dropped after."""
    if not suite_url.startswith("postgresql"):
        yield f"sqlite:///{tmp / 'migrations.db'}"
        return
    name = f"lantian_migrations_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _engine(suite_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = suite_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def upgrade(url: str, revision: str) -> None:
    command.upgrade(alembic_config(url), revision)


@contextmanager
def connect(url: str) -> Iterator[object]:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
