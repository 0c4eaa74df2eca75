"""The claim shard of an event: the same plate as read, the same shard; every shard in range."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from remote_sensing.models import JUDGE_SHARDS, claim_shard


@given(st.text(max_size=12))
def test_a_plate_always_falls_in_the_same_shard_in_range(number):
    body = {"plate": {"number": number, "color": "yellow"}}
    assert 0 <= claim_shard(body) < JUDGE_SHARDS
    assert claim_shard(body) == claim_shard({"plate": {"number": f" {number.upper()} "}})


def test_reads_the_judge_may_match_to_one_vehicle_share_a_shard():
    shard = claim_shard({"plate": {"number": "苏B12345"}})
    for read in ("苏b12345", "苏B 12345", "苏B·12345", "苏Ｂ１２３４５", "苏B1234S", "苏BI2345"):
        assert claim_shard({"plate": {"number": read}}) == shard, read


def test_an_event_without_a_plate_string_is_in_shard_zero():
    for body in ({}, {"plate": None}, {"plate": {"number": 5}}, [], None):
        assert claim_shard(body) == 0


def test_plates_spread_over_every_shard():
    assert {claim_shard({"plate": {"number": f"苏B{n:05d}"}}) for n in range(2000)} == set(range(JUDGE_SHARDS))
