"""A drain's claim floors (remote_sensing.processing.ClaimFloors): a margin below the highest
id claimed, per shard, and back to the start when a rescan is due."""

from __future__ import annotations

from datetime import UTC, datetime

from remote_sensing import processing
from remote_sensing.processing import FLOOR_MARGIN, ClaimFloors, EventRow


def _rows(*ids: int) -> list[EventRow]:
    return [EventRow(i, 1, datetime(2026, 11, 20, tzinfo=UTC), {}) for i in ids]


def test_floors_rise_a_margin_below_the_highest_id_claimed_and_never_fall():
    floors = ClaimFloors()
    floors.passed(3, _rows(10_000, 12_000))
    floors.passed(3, _rows(5_000))
    floors.passed(None, _rows(9_000))
    floors.passed(4, [])
    assert floors.shards == {3: 12_000 - FLOOR_MARGIN} and floors.oldest == 9_000 - FLOOR_MARGIN


def test_a_rescan_goes_back_to_the_start_when_due_or_asked(monkeypatch):
    floors = ClaimFloors()
    assert floors.rescan_due(now=True) is False  # nothing was above the start
    floors.passed(1, _rows(50_000))
    assert floors.rescan_due() is False and floors.shards
    monkeypatch.setattr(processing, "RESCAN_S", 0.0)
    assert floors.rescan_due() is True
    assert floors.shards == {} and floors.oldest == 0


def test_the_oldest_floor_rises_to_the_lowest_shard_floor_once_every_shard_has_one():
    floors = ClaimFloors()
    for shard in range(processing.JUDGE_SHARDS - 1):
        floors.passed(shard, _rows(10_000 + shard))
    assert floors.oldest == 0
    floors.passed(processing.JUDGE_SHARDS - 1, _rows(90_000))
    assert floors.oldest == 10_000 - FLOOR_MARGIN
