"""What a process needs to do work: settings, the database and, when configured, Redis.

The web app builds one in `create_app`; a worker builds one lazily in each process, after
any fork, so no connection is ever shared across processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import audit, keys, queue, redis_client
from core.db import make_engine, make_sessionmaker
from core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # The standby's, or the primary's own when no standby is configured.
    read_engine: Engine
    read_sessions: sessionmaker[Session]
    dispatcher: queue.Dispatcher  # for work committed outside a Session (DriverConnection)
    redis: Any | None  # raw-bytes client, as RQ requires
    rq_queue: Any | None
    pid: int
    station_box: keys.SecretBox  # station secrets are stored sealed by it
    # key_id -> the station row last read for it; never the ground for a refusal (core.web).
    station_keys: dict[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def build(settings: Settings) -> Runtime:
    settings = keys.resolved(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    read_engine, read_sessions = engine, sessions
    if settings.read_database_url:
        read_engine = make_engine(settings.read_database_url)
        read_sessions = make_sessionmaker(read_engine)
    redis = rq_queue = None
    dispatcher: queue.Dispatcher = queue.InlineDispatcher()
    if settings.uses_redis:
        from rq import Queue

        redis = redis_client.connect(settings)
        rq_queue = Queue(settings.queue_name, connection=redis, serializer="rq.serializers.JSONSerializer")
        dispatcher = queue.RQDispatcher(rq_queue)
    audit.install(sessions)
    queue.install(sessions, dispatcher)
    box = keys.SecretBox(settings.station_key_encryption_key or "")
    return Runtime(settings, engine, sessions, read_engine, read_sessions, dispatcher, redis, rq_queue, os.getpid(),
                   box)


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
