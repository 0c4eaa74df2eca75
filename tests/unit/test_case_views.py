"""GET /cases answers its case views without marshmallow's dump (enforcement.cases, presenting).

Whatever is stored, the views must already be what CasePage dumps: written by the app's JSON
provider, the two give the same bytes, and every field the schemas declare is there.
Rows are generated column by column from the models, so a column added to a table or a
field added to a schema without the other fails here.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields
from sqlalchemy import Column, create_engine, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core import json_format
from core.db import UTCDateTime
from core.registry import Vehicle
from enforcement import cases
from enforcement.models import Case, Notice, Penalty, Repair, Retest, Violation
from lantian.app import JSONProvider
from lantian.models import metadata
from schemas.cases import CasePage

engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
metadata().create_all(engine)
provider = JSONProvider(Flask(__name__))
unique = itertools.count()

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
# The JSON columns, in the shapes the API stores (a new one must be added here).
JSON_COLUMNS = {
    "details": st.dictionaries(TEXT, JSON, max_size=4),
    "results": st.dictionaries(TEXT, JSON, max_size=4),
    "items": st.lists(TEXT, max_size=3),
    "review_required": st.lists(st.fixed_dictionaries({"reason": TEXT, "violation_id": st.integers(1, 2**31 - 1)}),
                                max_size=2),
    "violation_ids": st.lists(st.integers(1, 2**31 - 1), max_size=3),
    "fleet_id": st.none(),  # a reference: no fleet rows are drawn
    # The evidence a violation keeps, as core.json_format writes it.
    "evidence_json": st.dictionaries(TEXT, JSON, max_size=3).map(lambda d: json_format.encode(d).decode()),
}
BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    bool: st.booleans(),
    int: st.integers(0, 2**31 - 1),
    date: st.dates(date(1990, 1, 1), date(2100, 1, 1)),
}
INSTANTS = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
SET_HERE = {"id", "case_id", "vehicle_id"}
CHILDREN = (Violation, Notice, Penalty, Repair, Retest)


def values(column: Column[Any]) -> st.SearchStrategy[Any]:
    if column.name in JSON_COLUMNS:
        strategy = JSON_COLUMNS[column.name]
    elif isinstance(column.type, UTCDateTime):
        strategy = INSTANTS
    elif column.type.python_type is str:
        strategy = TEXT.map(lambda s, n=column.type.length: s[:n])
    else:
        strategy = BY_TYPE[column.type.python_type]
    return st.none() | strategy if column.nullable else strategy


def rows(model: Any, min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[list[dict[str, Any]]]:
    columns = {c.name: values(c) for c in model.__table__.columns if c.name not in SET_HERE}
    return st.lists(st.fixed_dictionaries(columns), min_size=min_size, max_size=max_size)


# A case: its vehicle's plate, the case row, and its children of each kind.
a_case = st.tuples(TEXT, rows(Case, 1, 1), st.tuples(*(rows(m) for m in CHILDREN)))


def store(session: Session, drawn: list[Any]) -> list[int]:
    ids = []
    for plate, (case_row,), children in drawn:
        n = next(unique)
        vehicle = Vehicle(plate=f"{plate[:10]}#{n}", plate_color="yellow", plate_key=str(n))
        session.add(vehicle)
        session.flush()
        case_id = session.execute(insert(Case).returning(Case.id), {**case_row, "vehicle_id": vehicle.id}).scalar()
        for model, kind_rows in zip(CHILDREN, children, strict=True):
            for row in kind_rows:
                row["case_id"] = case_id
                if model is Violation:  # unique per source record
                    row.update(vehicle_id=vehicle.id, source_ref=f"{row['source_ref'][:50]}#{next(unique)}")
                session.execute(insert(model), row)
        ids.append(case_id)
    return ids


def assert_complete(schema: Schema, dumped: dict[str, Any]) -> None:
    """Every declared field, in order: one the views lacked would be left out of both answers."""
    assert list(dumped) == list(schema.dump_fields)
    for name, field in schema.dump_fields.items():
        nested = field.inner if isinstance(field, fields.List) else field
        if isinstance(nested, fields.Nested):
            for value in dumped[name] if isinstance(field, fields.List) else [dumped[name]]:
                assert_complete(nested.schema, value)


@given(drawn=st.lists(a_case, min_size=1, max_size=3), today=BY_TYPE[date], cursor=st.none() | TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
def test_case_views_are_what_case_page_dumps(drawn: list[Any], today: date, cursor: str | None) -> None:
    with Session(engine) as session:
        ids = store(session, drawn)
        stored = session.scalars(select(Case).where(Case.id.in_(ids)).order_by(Case.id)).all()
        page = {"items": cases.present_cases(session, stored, today), "next_cursor": cursor}
        dumped = CasePage().dump(page)
        assert provider.dumps(page) == provider.dumps(dumped)
        assert_complete(CasePage(), dumped)
        session.rollback()
