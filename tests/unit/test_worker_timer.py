"""The worker's periodic timer enqueues through a Redis client of its own: RQ sets the
socket timeout of the worker's pool for its blocking dequeue, and sharing that pool made the
timer's enqueues time out and back off (81 timeouts in 18 minutes on one worker)."""

from __future__ import annotations

from redis import Redis
from rq import Queue, SimpleWorker

from core.settings import Settings
from workers.runner import periodic_connection

URL = "redis://127.0.0.1:6379/7"  # nothing connects: clients are built, never used


def test_the_timer_client_is_not_the_workers_pool_and_keeps_its_own_timeout():
    workers_client = Redis.from_url(URL)
    SimpleWorker([Queue("q", connection=workers_client)], connection=workers_client)
    timer = periodic_connection(Settings(redis_url=URL))
    assert timer.connection_pool is not workers_client.connection_pool
    worker_timeout = workers_client.connection_pool.connection_kwargs["socket_timeout"]
    assert timer.connection_pool.connection_kwargs["socket_timeout"] == 30 != worker_timeout
    assert timer.connection_pool.connection_kwargs["health_check_interval"] == 30
