"""The compiled fast path never vouches for an event marshmallow would refuse."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load

from schemas.compiled import compile_check
from schemas.events import EventIn
from tests.factories import event

certainly_valid = compile_check(EventIn)

# Values a firmware could send in place of any field: edges, wrong JSON types, specials.
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**400), 10**400),
    st.sampled_from([0, 1, 5, 6, 20, 21, -30, 30, 400, 401, -200, -201, 100, 100.0000001, 1e308, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["blue", "yellow", "pink", "diesel", "gasoline", "", "2026-11-23T08:00:00+08:00",
                     "0001-01-01T00:00:00+08:00", "1899-12-31T23:59:59Z", "3000-01-01T00:00:00Z",
                     "2026-11-23T08:00:00", "2026-11-23", "2026-11-23T00:00:00Z", "x" * 101, "苏B12345"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
paths = st.sampled_from([
    ("event_id",), ("lane",), ("measured_at",), ("speed_kmh",), ("acceleration_ms2",), ("vsp_kw_t",),
    ("fuel_type_observed",), ("plate",), ("plate", "number"), ("plate", "color"), ("plate", "confidence"),
    ("measurements",), ("measurements", "co_pct"), ("measurements", "co2_pct"), ("measurements", "hc_ppm"),
    ("measurements", "no_ppm"), ("measurements", "opacity_pct"), ("measurements", "ringelmann"),
    ("conditions",), ("conditions", "wind_speed_ms"), ("conditions", "temperature_c"),
    ("conditions", "humidity_pct"), ("conditions", "pressure_kpa"), ("extra",), ("plate", "extra"),
    ("measurements", "extra"), ("conditions", "extra"),
])
edits = st.lists(st.tuples(paths, st.one_of(odd_values, st.just(KeyError))), max_size=4)


def _edit(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = body
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            return
        target = target[key]
    if value is KeyError:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


@settings(max_examples=600, deadline=None)
@given(edits)
def test_what_the_fast_path_passes_marshmallow_loads_the_same(changes: list[tuple[tuple[str, ...], Any]]) -> None:
    body = event()
    for path, value in changes:
        _edit(body, path, value)
    original = copy.deepcopy(body)
    if not certainly_valid(body):
        return
    loaded = EventIn().load(body)  # raises if the fast path vouched for a refused event
    assert loaded["event_id"] == body["event_id"]
    assert loaded["measured_at"] == datetime.fromisoformat(body["measured_at"])
    assert body == original


def test_ordinary_events_take_the_fast_path() -> None:
    assert certainly_valid(event())
    assert certainly_valid(event(measurements={"co_pct": None, "co2_pct": 0, "hc_ppm": None, "no_ppm": None,
                                               "opacity_pct": None, "ringelmann": 5}))
    minimal = event()
    for key in ("lane", "vsp_kw_t", "conditions", "fuel_type_observed"):
        del minimal[key]
    assert certainly_valid(minimal)


@pytest.mark.parametrize("change", [
    {"speed_kmh": True}, {"speed_kmh": "42"}, {"measured_at": "0001-01-01T00:00:00+08:00"},
    {"speed_kmh": float("nan")}, {"speed_kmh": 10**400},
    {"lane": 1.0}, {"lane": 21}, {"measured_at": "2026-11-23T08:00:00"}, {"conditions": None},
    {"measurements": {"co_pct": None, "co2_pct": None, "hc_ppm": None, "no_ppm": None, "opacity_pct": None,
                      "ringelmann": None}},
    {"plate": {"number": "苏B12345", "color": "blue", "confidence": 0.9, "extra": 1}},
])
def test_refused_events_are_left_to_marshmallow(change: dict[str, Any]) -> None:
    body = {**event(), **change}
    assert not certainly_valid(body)
    with pytest.raises(ValidationError):
        EventIn().load(body)


def test_a_schema_it_cannot_mirror_is_refused_at_compile_time() -> None:
    class Shaped(Schema):
        value = fields.Integer()

        @post_load
        def _shape(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            return data

    class Loose(Schema):
        when = fields.Date()

    class Lenient(Schema):
        value = fields.Float()  # marshmallow's own Float takes "42" and True

    for schema in (Shaped, Loose, Lenient):
        with pytest.raises(TypeError):
            compile_check(schema)
