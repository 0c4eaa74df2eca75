"""The configured Redis: one server (LANTIAN_REDIS_URL), or the master its sentinels name
(LANTIAN_REDIS_SENTINELS). Through Sentinel the client asks for the master's address on each
new connection, so after a failover the next command reaches the new master."""

from __future__ import annotations

from typing import Any

from core.settings import Settings, sentinel_addresses


def connect(settings: Settings, **options: Any) -> Any:
    """A redis-py client (raw bytes, as RQ requires); `options` are the connection's (timeouts)."""
    from redis import Redis

    if not settings.redis_sentinels:
        return Redis.from_url(settings.redis_url or "", **options)
    from redis.connection import parse_url
    from redis.sentinel import Sentinel

    given = parse_url(settings.redis_url) if settings.redis_url else {}
    kept = {key: given[key] for key in ("db", "username", "password") if given.get(key) is not None}
    sentinels = Sentinel(sentinel_addresses(settings.redis_sentinels),
                         sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2})
    return sentinels.master_for(settings.redis_sentinel_service, **kept, **options)
