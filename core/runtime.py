"""What a process needs to do work: settings, the database and, when configured, Redis.

The web app builds one in `create_app`; a worker builds one lazily in each process, after
any fork, so no connection is ever shared across processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import audit, queue
from core.db import make_engine, make_sessionmaker
from core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # For requests that write with a single statement: no BEGIN and no COMMIT round trips.
    autocommit_sessions: sessionmaker[Session]
    redis: Any | None  # raw-bytes client, as RQ requires
    rq_queue: Any | None
    pid: int

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


def build(settings: Settings) -> Runtime:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    autocommit_sessions = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    redis = rq_queue = None
    dispatcher: queue.Dispatcher = queue.InlineDispatcher()
    if settings.redis_url:
        from redis import Redis
        from rq import Queue

        redis = Redis.from_url(settings.redis_url)
        rq_queue = Queue(settings.queue_name, connection=redis, serializer="rq.serializers.JSONSerializer")
        dispatcher = queue.RQDispatcher(rq_queue)
    for factory in (sessions, autocommit_sessions):
        audit.install(factory)
        queue.install(factory, dispatcher)
    return Runtime(settings, engine, sessions, autocommit_sessions, redis, rq_queue, os.getpid())


_current: Runtime | None = None


def activate(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """This process's runtime, built from the environment on first use after a fork."""
    global _current
    if _current is None or _current.pid != os.getpid():
        _current = build(Settings())
    return _current
