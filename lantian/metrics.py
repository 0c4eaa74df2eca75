"""Prometheus metrics; multiprocess-safe under gunicorn when PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

REQUESTS = Counter("lantian_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("lantian_http_request_seconds", "HTTP request latency", ["endpoint"])


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.metrics_start = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        if "metrics_start" in g:
            LATENCY.labels(endpoint).observe(time.perf_counter() - g.metrics_start)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            body = generate_latest(registry)
        else:
            body = generate_latest()
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
