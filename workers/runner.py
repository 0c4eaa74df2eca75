"""The `lantian worker` process: an RQ worker plus a timer that enqueues periodic sweeps."""

from __future__ import annotations

import logging
import threading
import time

from core import logs, redis_client
from core.settings import Settings

log = logging.getLogger(__name__)

# Periodic jobs: (dotted path, period in seconds). Each run has a deterministic id per
# period, so several workers enqueueing the same sweep produce one job.
PERIODIC: tuple[tuple[str, int], ...] = (
    ("workers.jobs.sweep", 30), ("workers.jobs.mark_overdue", 600), ("workers.jobs.maintain_partitions", 3600),
)


def periodic_jobs(settings: Settings) -> tuple[tuple[str, int], ...]:
    if not settings.audit_checkpoint_dir:
        return PERIODIC
    return (*PERIODIC, ("workers.jobs.audit_checkpoint", settings.audit_checkpoint_period_s))


def _enqueue_periodic(queue, jobs: tuple[tuple[str, int], ...], stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    from rq.exceptions import DuplicateJobError

    while not stop.is_set():
        now = int(time.time())
        for path, period in jobs:
            try:
                queue.enqueue(path, job_id=f"{path.rsplit('.', 1)[1]}-{now // period}", unique=True,
                              result_ttl=period * 4, failure_ttl=86400)
            except DuplicateJobError:
                pass
            except Exception:  # Redis briefly away: try again next tick
                log.exception("could not enqueue %s", path)
        stop.wait(min(p for _, p in jobs))


def _logged(worker_class: type) -> type:
    """`worker_class` writing one JSON line per job: its id, function, status and duration."""
    jobs_log = logs.get("lantian.job")

    class Logged(worker_class):  # type: ignore[misc, valid-type]
        def perform_job(self, job, queue, execution):  # type: ignore[no-untyped-def]
            started, ok = time.perf_counter(), False
            try:
                ok = super().perform_job(job, queue, execution)
                return ok
            finally:
                jobs_log.info("job", job_id=job.id, func=job.func_name, status="finished" if ok else "failed",
                              duration_ms=round((time.perf_counter() - started) * 1000, 2))

    Logged.__name__ = f"Logged{worker_class.__name__}"
    return Logged


def periodic_connection(settings: Settings):  # type: ignore[no-untyped-def]
    """A Redis client of the timer thread's own, never shared with the worker's pool."""
    return redis_client.connect(settings, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)


def run_worker(settings: Settings, *, burst: bool = False, simple: bool = True) -> None:
    from rq import Queue, SimpleWorker, Worker

    if not settings.uses_redis:
        raise SystemExit("LANTIAN_REDIS_URL is not set: without Redis, jobs run inline in the web process")
    connection = redis_client.connect(settings)
    serializer = "rq.serializers.JSONSerializer"
    queue = Queue(settings.queue_name, connection=connection, serializer=serializer)
    stop = threading.Event()
    if not burst:
        # Its own client: RQ gives the worker's connection pool a short socket timeout for its
        # blocking dequeue, and a shared pool made the timer's enqueues time out and back off.
        timer_queue = Queue(settings.queue_name, connection=periodic_connection(settings), serializer=serializer)
        threading.Thread(target=_enqueue_periodic, args=(timer_queue, periodic_jobs(settings), stop), daemon=True,
                         name="periodic").start()
    logs.install()
    worker_class = _logged(SimpleWorker if simple else Worker)
    worker = worker_class([queue], connection=connection, serializer=serializer)
    try:
        worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
    finally:
        stop.set()
