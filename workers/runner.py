"""The `lantian worker` process: an RQ worker plus a timer that enqueues periodic sweeps."""

from __future__ import annotations

import logging
import threading
import time

from core.settings import Settings

log = logging.getLogger(__name__)

# Periodic jobs: (dotted path, period in seconds). Each run has a deterministic id per
# period, so several workers enqueueing the same sweep produce one job.
PERIODIC: tuple[tuple[str, int], ...] = (("workers.jobs.sweep", 30), ("workers.jobs.mark_overdue", 600))


def _enqueue_periodic(queue, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    from rq.exceptions import DuplicateJobError

    while not stop.is_set():
        now = int(time.time())
        for path, period in PERIODIC:
            try:
                queue.enqueue(path, job_id=f"{path.rsplit('.', 1)[1]}-{now // period}", unique=True,
                              result_ttl=period * 4, failure_ttl=86400)
            except DuplicateJobError:
                pass
            except Exception:  # Redis briefly away: try again next tick
                log.exception("could not enqueue %s", path)
        stop.wait(min(p for _, p in PERIODIC))


def run_worker(settings: Settings, *, burst: bool = False, simple: bool = True) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker, Worker

    if not settings.redis_url:
        raise SystemExit("LANTIAN_REDIS_URL is not set: without Redis, jobs run inline in the web process")
    connection = Redis.from_url(settings.redis_url)  # raw bytes, as RQ requires
    serializer = "rq.serializers.JSONSerializer"
    queue = Queue(settings.queue_name, connection=connection, serializer=serializer)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_enqueue_periodic, args=(queue, stop), daemon=True, name="periodic").start()
    worker_class = SimpleWorker if simple else Worker
    worker = worker_class([queue], connection=connection, serializer=serializer)
    try:
        worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
    finally:
        stop.set()
