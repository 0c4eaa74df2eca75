"""Pure pieces of core: regions, credit codes, signatures, cursors, the audit chain."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import audit, identity, regions
from core.errors import ApiError
from core.pagination import decode_cursor, encode_cursor
from schemas.common import uscc_valid


@pytest.mark.parametrize("scope, region, sees", [
    (None, "320281", True), (None, None, True),
    ("320000", "320281", True), ("320200", "320281", True), ("320200", "320200", True),
    ("320281", "320281", True), ("320281", "320282", False), ("320200", "320500", False),
    ("320200", None, False), ("320281", "320200", False),
])
def test_region_containment(scope, region, sees):
    assert regions.contains(scope, region) is sees


@pytest.mark.parametrize("code, ok", [
    ("91320200MA1XXXXXXW", True), ("91350100M000100Y43", True), ("91320200MA1XXXXXX1", False),
    ("91320200MA1XXXXXXI", False), ("9132020", False), ("91320200ma1xxxxxxw", False),
])
def test_unified_social_credit_code_check_digit(code, ok):
    assert uscc_valid(code) is ok


def test_signature_matches_the_contract_formula():
    body = b'{"a":1}'
    expected_msg = "POST\n/api/v1/remote-sensing/events\n1700000000\n" + hashlib.sha256(body).hexdigest()
    import hmac

    expected = hmac.new(b"s3cret", expected_msg.encode(), hashlib.sha256).hexdigest()
    assert identity.sign("s3cret", "POST", "/api/v1/remote-sensing/events", "1700000000", body) == expected
    assert identity.signature_matches("s3cret", expected.upper(), "POST", "/api/v1/remote-sensing/events",
                                      "1700000000", body)
    assert not identity.signature_matches("s3cret", expected, "POST", "/api/v1/x", "1700000000", body)


@pytest.mark.parametrize("ts, ok", [("1000", True), ("700", True), ("1300", True), ("699", False), ("1301", False),
                                    ("abc", False), ("", False), ("１０００", False), ("1000.0", False)])
def test_timestamp_window_is_symmetric(ts, ok):
    assert (identity.timestamp_problem(ts, 1000, 300) is None) is ok


def test_timestamp_messages_name_the_server_time_and_milliseconds():
    stale = identity.timestamp_problem("1764600000", 1764620000, 300)
    assert "20000 s" in stale and "server time 1764620000 (2025-12-01T20:13:20Z)" in stale
    ms = identity.timestamp_problem("1764620000123", 1764620000, 300)
    assert "looks like milliseconds" in ms and "unix seconds" in ms


def test_password_hash_is_argon2_and_verifies():
    hashed = identity.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert identity.verify_password(hashed, "correct horse")
    assert not identity.verify_password(hashed, "wrong")
    assert not identity.verify_password("not-a-hash", "x")


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(max_size=20)), st.integers(0, 2**53))
def test_cursor_round_trip(key, row_id):
    assert decode_cursor(encode_cursor(key, row_id)) == (key, row_id)


def test_cursor_with_datetime_round_trip():
    t = datetime(2026, 11, 22, 0, 15, 30, 123, tzinfo=UTC)
    assert decode_cursor(encode_cursor(t, 7)) == (t, 7)


@pytest.mark.parametrize("bad", ["", "!!!", "bm90IGpzb24", "WzEsMl0x", "A" * 201])
def test_foreign_cursor_is_a_client_error(bad):
    with pytest.raises(ApiError):
        decode_cursor(bad)


def _forge(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.usefixtures("hang_guard")  # `None in range(2**64)` once walked the whole range
@pytest.mark.parametrize("forged", [
    [None, 1], ["x", 1], [1.5, 1], [True, 1], [2**63, 1], [1, None], [1, 2**63], [1, 1.0], [1, 2, 3], {"a": 1},
    [{"t": "2026-01-01T00:00:00"}, 1], [{"t": 5}, 1], [{"t": "2026-01-01T00:00:00+00:00", "x": 1}, 1],
    [[[[[[[[1]]]]]]], 1],
])
def test_forged_cursor_for_an_integer_key_is_refused_at_once(forged):
    with pytest.raises(ApiError) as caught:
        decode_cursor(_forge(forged), int)
    assert caught.value.code == "invalid_cursor"


def test_nullable_sort_key_takes_null_and_datetime_key_takes_only_aware_times():
    assert decode_cursor(_forge([None, 3]), int, nullable=True) == (None, 3)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert decode_cursor(encode_cursor(t, 4), datetime) == (t, 4)
    with pytest.raises(ApiError):
        decode_cursor(_forge([5, 4]), datetime)


def _chain(n: int) -> list[audit.AuditRecord]:
    records, prev = [], audit.GENESIS
    for i in range(n):
        r = audit.AuditRecord(id=i + 1, at=datetime(2026, 1, 1, tzinfo=UTC), actor="a", action="x",
                              subject_type="case", subject_id=str(i), reason=None, data={"i": i}, prev_hash=prev)
        r.hash = audit._digest(r)
        prev = r.hash
        records.append(r)
    return records


def test_intact_chain_verifies():
    report = audit.verify_chain(_chain(5))
    assert report.ok and report.checked == 5


def test_edited_record_is_caught_where_it_is():
    records = _chain(5)
    records[2].data = {"i": 99}
    report = audit.verify_chain(records)
    assert not report.ok and report.broken_at == 3 and report.problem == "record content altered"


def test_deleted_record_is_caught_at_its_successor():
    records = _chain(5)
    del records[1]
    report = audit.verify_chain(records)
    assert not report.ok and report.broken_at == 3


# station windows ------------------------------------------------------------------------


def test_station_calibration_window_is_inclusive() -> None:
    Station, station_calibrated = identity.Station, identity.station_calibrated
    station = Station(calibrated_from=date(2026, 1, 10), calibrated_until=date(2026, 6, 30))
    assert station_calibrated(station, date(2026, 1, 10)) and station_calibrated(station, date(2026, 6, 30))
    assert not station_calibrated(station, date(2026, 1, 9)) and not station_calibrated(station, date(2026, 7, 1))
    assert station_calibrated(Station(calibrated_from=None, calibrated_until=date(2026, 6, 30)), date(2000, 1, 1))


def test_suspension_intervals_are_half_open() -> None:
    suspended_at = identity.suspended_at
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    closed = [(start, start + timedelta(hours=1))]
    second = timedelta(seconds=1)
    assert suspended_at(closed, start) and suspended_at(closed, start + timedelta(hours=1) - second)
    assert not suspended_at(closed, start - second) and not suspended_at(closed, start + timedelta(hours=1))
    assert suspended_at([(start, None)], start + timedelta(days=400))  # still suspended
    assert not suspended_at([], start)
