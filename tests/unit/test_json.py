"""Responses are written by orjson and JSON columns read by it: the same JSON as the standard
library's, and its fallbacks take what orjson refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from core.db import json_loads
from lantian.app import JSONProvider

app = Flask("json-test")  # the provider keeps only a weak reference
provider = JSONProvider(app)
aware = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]))
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    | aware | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def standard(value: object) -> str:
    return json.dumps(value, default=JSONProvider.default, ensure_ascii=False, separators=(",", ":"))


@given(values)
def test_responses_read_as_the_standard_encoders_would(value):
    written = provider.dumps(value)
    assert json.loads(written) == json.loads(standard(value))
    assert json.loads(provider.response(value).get_data()) == json.loads(standard(value))


def test_times_and_dates_are_written_as_before():
    at = datetime(2026, 11, 22, 8, 15, 30, tzinfo=timezone(timedelta(hours=8)))
    assert provider.dumps({"at": at, "on": date(2026, 11, 22)}) == '{"at":"2026-11-22T00:15:30Z","on":"2026-11-22"}'
    assert provider.dumps([at.replace(microsecond=5)]) == '["2026-11-22T00:15:30.000005Z"]'


def test_what_orjson_refuses_falls_back_to_the_standard_library():
    assert provider.dumps({"n": 10**30}) == '{"n":1000000000000000000000000000000}'
    assert provider.dumps({1: "a"}) == '{"1":"a"}'
    assert json_loads(memoryview(b"[1e400]")) == [float("inf")]


@given(values)
def test_json_columns_read_as_the_standard_parser_would(value):
    text = standard(value)
    assert json_loads(text.encode()) == json.loads(text)
    assert json_loads(text) == json.loads(text)


def test_long_integers_in_json_columns_keep_every_digit():
    assert json_loads(b'{"n": 1' + b"0" * 30 + b"}") == {"n": 10**30}
    assert json_loads(b"[-9223372036854775809]") == [-9223372036854775809]
    assert json_loads("[1, 18446744073709551616]") == [1, 18446744073709551616]  # 20 digits, after a space
    assert json_loads(b'{"a":[9223372036854775808]}') == {"a": [2**63]}  # 19 digits: the shortest guarded run
    assert json_loads(b"[999999999999999999]") == [999999999999999999]  # 18 digits: orjson reads it exactly
    assert json_loads('["1234567890123456789012", "\\ud800"]') == ["1234567890123456789012", "\ud800"]


def test_kept_json_is_embedded_as_it_is_and_read_back_where_the_standard_encoder_writes():
    from core.json_format import Raw

    kept = Raw('{"events":[{"no_ppm":1850,"at":"2026-11-22T00:15:30Z"}]}')
    assert provider.dumps({"evidence": kept}) == '{"evidence":' + kept.text + "}"
    assert provider.response({"evidence": kept}).get_data() == b'{"evidence":' + kept.text.encode() + b"}\n"
    # A long integer elsewhere sends the whole answer to the standard encoder, which reads the text back.
    assert json.loads(provider.dumps({"n": 10**30, "evidence": kept})) == {"n": 10**30, "evidence": kept.value()}
    assert json.loads(provider.dumps({"evidence": kept}, indent=2)) == {"evidence": kept.value()}
