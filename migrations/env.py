"""Alembic environment: the URL comes from `lantian db upgrade` (or LANTIAN_DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from core import partitions
from core.db import make_engine
from core.settings import Settings
from lantian.models import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().database_url
target_metadata = metadata()


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(url)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    if connection.dialect.name == "sqlite":
        # Batch migrations rebuild SQLite tables, which other tables reference: the
        # checks are off while they run (SQLite ignores the pragma inside a transaction).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, include_name=partitions.include_name)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
