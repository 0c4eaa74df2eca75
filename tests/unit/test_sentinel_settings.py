"""LANTIAN_REDIS_SENTINELS is checked when the settings are read, not at the first job."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings, sentinel_addresses


def test_sentinels_are_host_port_pairs():
    assert sentinel_addresses("10.0.0.1:26379, sentinel-2:26380,[::1]:26379") == [
        ("10.0.0.1", 26379), ("sentinel-2", 26380), ("::1", 26379)]
    assert Settings(redis_sentinels="10.0.0.1:26379").uses_redis
    assert not Settings().uses_redis


@pytest.mark.parametrize("bad", ["sentinel", "host:", ":26379", "host:0", "host:65536", "host:２６３７９", "a:1,,b:2"])
def test_a_malformed_sentinel_list_is_refused_at_start(bad):
    with pytest.raises(ValidationError, match="is not host:port"):
        Settings(redis_sentinels=bad)
