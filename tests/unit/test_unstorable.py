"""The shortcut that skips the walk for unstorable text must never skip text that holds some."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.common import has_unstorable, may_hold_unstorable

# Any code point, lone surrogates and NUL included, in keys and values.
text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@given(values, st.booleans(), st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-32-be"]))
def test_text_that_parses_to_unstorable_strings_is_always_walked(value, ascii_only, encoding):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode(encoding, "surrogatepass")
    parsed = json.loads(raw)
    if has_unstorable(parsed):
        assert may_hold_unstorable(raw)
        assert may_hold_unstorable(raw.decode(encoding, "surrogatepass"))


def test_plain_station_text_needs_no_walk():
    assert not may_hold_unstorable(json.dumps({"plate": "苏B12345"}, ensure_ascii=False).encode())
    assert may_hold_unstorable(b'{"plate": "\\u82cf"}')  # escapes are walked, whatever they spell
