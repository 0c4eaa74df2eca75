"""Enqueue jobs by dotted path, only after the transaction that made their input commits.

The database is the outbox: a job only ever carries ids, and a job that is lost (Redis
flushed, worker killed) is re-created by the sweeper from rows still waiting. When no
Redis is configured, jobs run inline in this process right after the commit.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    path: str  # "package.module.function"
    args: tuple[Any, ...] = ()
    job_id: str | None = None
    coalesce: str | None = None


class Dispatcher(Protocol):
    def dispatch(self, jobs: list[JobRequest]) -> None: ...


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def enqueue_after_commit(
    session: Session, path: str, *args: Any, job_id: str | None = None, coalesce: str | None = None
) -> None:
    """Queue `path(*args)` to run once this session commits; nothing runs if it rolls back.

    `coalesce` names a drain job: while one such job is queued and not yet started,
    further requests are dropped, because the queued one will see their rows too.
    """
    session.info.setdefault("lantian_jobs", []).append(JobRequest(path, args, job_id, coalesce))


class InlineDispatcher:
    """The embedded default: run each job in this process once the data is committed."""

    def dispatch(self, jobs: list[JobRequest]) -> None:
        for job in jobs:
            try:
                resolve(job.path)(*job.args)
            except Exception:  # the sweeper retries whatever is still waiting
                log.exception("inline job %s failed", job.path)


def install(factory: sessionmaker[Session], dispatcher: Dispatcher) -> None:
    """Hook a session factory so committed sessions hand their jobs to `dispatcher`."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        jobs = session.info.pop("lantian_jobs", None)
        if jobs:
            dispatcher.dispatch(jobs)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop("lantian_jobs", None)


def coalesce_key(name: str) -> str:
    return f"lantian:pending:{name}"


class RQDispatcher:
    """Hands jobs to RQ; deterministic ids with `unique=True` make a re-enqueue a no-op."""

    def __init__(self, queue: Any, coalesce_ttl_s: int = 300) -> None:
        self.queue = queue
        self.coalesce_ttl_s = coalesce_ttl_s

    def dispatch(self, jobs: list[JobRequest]) -> None:
        from rq import Retry
        from rq.exceptions import DuplicateJobError

        redis = self.queue.connection
        for job in jobs:
            # The flag expires so a lost job cannot silence the kicks for long; the
            # sweeper covers that window.
            if job.coalesce and not redis.set(coalesce_key(job.coalesce), b"1", nx=True, ex=self.coalesce_ttl_s):
                continue
            try:
                self.queue.enqueue(
                    job.path, *job.args, job_id=job.job_id, unique=job.job_id is not None,
                    result_ttl=60, failure_ttl=7 * 86400, retry=Retry(max=3, interval=[1, 5, 30]),
                )
            except DuplicateJobError:
                pass
            except Exception:  # Redis down: the rows wait in the database for the sweeper
                log.exception("could not enqueue %s", job.path)
