"""Database plumbing: the declarative base, portable column types and session factories.

PostgreSQL is the production database; SQLite is the embedded default. Everything here
works on both, so the same services and tests run on either.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    bindparam,
    create_engine,
    event,
    exc,
    insert,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_PG_DIALECT = postgresql.dialect()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC: one meaning for a timestamp on every database."""

    impl = DateTime
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# orjson reads an integer beyond 64 bits as a float, losing digits: text with a run of 19
# digits or more anywhere (a number, or digits inside a string) is left to the standard parser.
# Every digit is mapped to 0 and the run looked for as a substring: both in C, some 30 times
# faster than a regular expression over a page of evidence.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def json_loads(data: str | bytes | memoryview) -> Any:
    """JSON columns as read: orjson (several times faster on a page of violations), unless
    the text may hold a long integer; what orjson refuses (1e400) the standard parser takes."""
    if isinstance(data, memoryview):
        data = bytes(data)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url.removeprefix("sqlite:///")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_deserializer=json_loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=10, max_overflow=10, json_deserializer=json_loads)
    _ping_when_idle(engine)
    return engine


# A pooled connection unused for this long is tested before use (a round trip).
IDLE_PING_AFTER_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, for idle connections only.

    A server restart or an idle timeout kills connections that sat in the pool; one in
    steady use fails no more often than any in-flight query would. `pool_pre_ping` paid a
    round trip on every checkout, a fifth of a single-event ingest; this pays it only after
    `IDLE_PING_AFTER_S` of idleness. A failed ping makes the pool retry with a new
    connection (SQLAlchemy's documented checkout recipe).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in_at", 0.0) < IDLE_PING_AFTER_S:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_conn.autocommit:
                dbapi_conn.rollback()  # leave no transaction open behind the pool's back
        except Exception as err:
            raise exc.DisconnectionError("pooled connection is dead") from err


class DriverConnection:
    """A pooled psycopg connection in autocommit, for the statements run on every station
    request (PostgreSQL only): a Session and SQLAlchemy's execution layers cost more CPU
    than those statements themselves.

    The pool hands it out like any other connection (the idle ping included) and gets it
    back in its default mode; a connection that broke is invalidated, so the pool replaces it.
    """

    def __init__(self, engine: Engine) -> None:
        self._fairy = engine.raw_connection()
        self.conn: Any = self._fairy.driver_connection
        try:
            self.conn.autocommit = True
        except Exception:
            self._fairy.invalidate()
            self._fairy.close()
            raise

    @property
    def broken(self) -> bool:
        return bool(self.conn.broken)

    def release(self) -> None:
        try:
            if self.conn.broken:
                self._fairy.invalidate()
            else:
                self.conn.autocommit = False  # what a Session expects; no round trip when idle
        except Exception:
            self._fairy.invalidate()
        self._fairy.close()


_PSYCOPG_DIALECT = postgresql.psycopg.dialect()


@functools.cache
def driver_sql(stmt: Any) -> str:
    """A Core statement (a module-level constant) as psycopg SQL, compiled once: its bind
    parameters become `%(name)s`."""
    return str(stmt.compile(dialect=_PSYCOPG_DIALECT))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignore(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> int:
    """INSERT ... ON CONFLICT (keys) DO NOTHING on either database; returns rows inserted.

    Counted through RETURNING: a driver's rowcount for a batched insert may be -1.
    """
    return len(insert_ignore_returning(session, table, rows, keys, list(table.primary_key.columns)))


def insert_ignore_returning(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str], returning: Sequence[Any]
) -> list[Any]:
    """Like `insert_ignore`, but answers the `returning` columns of the rows it inserted.

    PostgreSQL: one constant statement whatever the number of rows (see `_recordset`);
    SQLite: one cached statement over many parameter sets.
    """
    if not rows:
        return []
    if is_postgres(session):
        names, values = _with_defaults(table, rows)
        stmt = _pg_insert_ignore(table, names, tuple(keys), tuple(c.name for c in returning))
        return list(session.execute(stmt, {"rows": _json_rows(values)}))
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(*returning)
    return list(session.execute(stmt, list(rows)))


def insert_keyed_returning(
    session: Session, keys_table: Any, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    """Insert `rows` into `table` whose unique key lives apart, in `keys_table`: its `id`
    (the row's id), the `keys` and any other of its columns, taken from the rows. Rows whose
    key is stored are skipped; answers the `returning` columns of `keys_table` for the rest.

    For a partitioned `table`, which can enforce a key only within a partition. PostgreSQL:
    one constant statement (both inserts); SQLite: the keys, then the rows with their ids.
    """
    if not rows:
        return []
    if is_postgres(session):
        names, values = _with_defaults(table, rows)
        sql = _keyed_insert_sql(keys_table, table, names, tuple(keys), tuple(returning), ":rows")
        return list(session.execute(text(sql), {"rows": _json_rows(values)}))
    key_names = _key_columns(keys_table)
    inserted = insert_ignore_returning(session, keys_table, [{n: row[n] for n in key_names} for row in rows], keys,
                                       [keys_table.c.id, *(keys_table.c[n] for n in keys)])
    ids = {tuple(found[1:]): found[0] for found in inserted}
    if ids:
        session.execute(insert(table), [{**row, "id": ids[k]} for row in rows
                                        if (k := tuple(row[n] for n in keys)) in ids])
    wanted = ("id", *keys)
    return [tuple(dict(zip(wanted, found, strict=True))[n] for n in returning) for found in inserted]


def driver_insert_keyed_returning(
    conn: Any, keys_table: Any, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
    returning: Sequence[str], *, where: Any = None, params: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """`insert_keyed_returning` on a psycopg connection (`DriverConnection.conn`); with
    `where` (a Core condition, a module-level constant, its binds in `params`), only if it holds."""
    if not rows:
        return []
    names, values = _with_defaults(table, rows)
    sql = _driver_keyed_insert(keys_table, table, names, tuple(keys), tuple(returning), where)
    return conn.execute(sql, {**(params or {}), "rows": _json_rows(values)}).fetchall()


def upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other given column, on either database."""
    if not rows:
        return
    updates = [name for name in rows[0] if name not in keys]
    if is_postgres(session):
        names, values = _with_defaults(table, rows)
        session.execute(_pg_upsert(table, names, tuple(keys), tuple(updates)), {"rows": _json_rows(values)})
        return
    stmt = sqlite.insert(table)
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_={n: stmt.excluded[n] for n in updates}),
                    list(rows))


def update_many(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], key: str | tuple[str, ...] = "id",
) -> None:
    """Set each row's given columns, finding it by `key` (a column or several: a partitioned
    table's key names the partition too, so each row is looked for in its own).

    One statement on PostgreSQL whatever the number of rows (the rows travel as one JSON
    parameter; the SQL is constant, so the server parses it once per connection); an
    executemany on SQLite.
    """
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else key
    names = tuple(name for name in rows[0] if name not in keys)
    if is_postgres(session):
        session.execute(_pg_update(table, keys, names), {"rows": _json_rows(rows)})
        return
    stmt = update(table).where(*(table.c[k] == bindparam(f"b_{k}") for k in keys)).values(
        {n: bindparam(f"b_{n}") for n in names})
    session.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])


# The statements are built once per table and column set: compiling the column types
# of a recordset cost as much as a single-row insert itself.


@functools.cache
def _pg_insert_ignore(table: Any, names: tuple[str, ...], keys: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    return text(_insert_ignore_sql(table, names, keys, returning, ":rows")).columns(
        *(table.c[name] for name in returning)
    )


@functools.cache
def _driver_keyed_insert(
    keys_table: Any, table: Any, names: tuple[str, ...], keys: tuple[str, ...], returning: tuple[str, ...], where: Any
) -> str:
    return _keyed_insert_sql(keys_table, table, names, keys, returning, "%(rows)s",
                             driver_sql(where) if where is not None else "")


@functools.cache
def _keyed_insert_sql(
    keys_table: Any, table: Any, names: tuple[str, ...], keys: tuple[str, ...], returning: tuple[str, ...],
    rows_param: str, where: str = "",
) -> str:
    key_names = ", ".join(_key_columns(keys_table))
    return (
        f"WITH v AS (SELECT {', '.join(names)} FROM {_recordset(table, names, rows_param)}"
        f"{f' WHERE {where}' if where else ''}),"
        f" k AS (INSERT INTO {keys_table.name} ({key_names}) SELECT {key_names} FROM v"
        f" ON CONFLICT ({', '.join(keys)}) DO NOTHING RETURNING id, {', '.join(keys)}),"
        f" r AS (INSERT INTO {table.name} (id, {', '.join(names)})"
        f" SELECT k.id, {', '.join(f'v.{n}' for n in names)} FROM k JOIN v USING ({', '.join(keys)}))"
        f" SELECT {', '.join(returning)} FROM k"
    )


def _key_columns(keys_table: Any) -> tuple[str, ...]:
    return tuple(c.name for c in keys_table.columns if c.name != "id")


def _insert_ignore_sql(
    table: Any, names: tuple[str, ...], keys: tuple[str, ...], returning: tuple[str, ...], rows_param: str,
) -> str:
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)}"
        f" FROM {_recordset(table, names, rows_param)}"
        f" ON CONFLICT ({', '.join(keys)}) DO NOTHING RETURNING {', '.join(returning)}"
    )


@functools.cache
def _pg_upsert(table: Any, names: tuple[str, ...], keys: tuple[str, ...], updates: tuple[str, ...]) -> Any:
    return text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM {_recordset(table, names)}"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in updates)
    )


@functools.cache
def _pg_update(table: Any, keys: tuple[str, ...], names: tuple[str, ...]) -> Any:
    return text(
        f"UPDATE {table.name} AS t SET " + ", ".join(f"{n} = v.{n}" for n in names)
        + f" FROM {_recordset(table, (*keys, *names))} WHERE " + " AND ".join(f"t.{k} = v.{k}" for k in keys)
    )


def _recordset(table: Any, names: Sequence[str], rows_param: str = ":rows") -> str:
    """The `:rows` parameter, a JSON array of objects, as a relation `v` typed like the table.

    All rows travel as one parameter and the SQL text stays the same for any number of
    rows, so PostgreSQL parses and plans it once per connection; a multi-row VALUES list
    was a new, long statement each time (parsed again by the driver and the server).
    """
    types = ", ".join(f"{n} {table.c[n].type.compile(dialect=_PG_DIALECT)}" for n in names)
    return f"jsonb_to_recordset(CAST({rows_param} AS jsonb)) AS v({types})"


def _with_defaults(table: Any, rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], Sequence[dict[str, Any]]]:
    """The rows with the Python-side column defaults a Core insert would have filled in."""
    given = tuple(rows[0])
    missing = _defaulted(table, given)
    if not missing:
        return given, rows
    defaults = {c.name: c.default.arg(None) if c.default.is_callable else c.default.arg for c in missing}
    return (*given, *defaults), [{**row, **defaults} for row in rows]


@functools.cache
def _defaulted(table: Any, given: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(c for c in table.columns
                 if c.name not in given and c.default is not None and not c.default.is_sequence)


def _json_rows(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, ensure_ascii=False)


def _json_value(value: Any) -> str:
    """Timestamps as the naive UTC that `UTCDateTime` columns hold; dates as ISO days."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as a column value")
