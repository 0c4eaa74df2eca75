"""Health, readiness, metrics, the OpenAPI document and migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from core import partitions
from core.db import make_engine
from lantian.cli import alembic_config
from lantian.models import metadata
from tests.conftest import needs_postgres
from tests.factories import event


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["database"] == "ok"


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200 and b"lantian_http_requests_total" in r.data


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/remote-sensing/events" in spec["paths"]
    assert "EventIn" in spec["components"]["schemas"]
    page = client.get("/docs")
    assert page.status_code == 200 and b"/api/v1/remote-sensing/events" in page.data


def test_unknown_route_is_json_404(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_migrations_have_one_head(database_url):
    heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    assert len(heads) == 1, heads


def test_models_and_migrations_do_not_drift(app):
    with app.extensions["lantian"].engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={
            "compare_type": False, "include_name": partitions.include_name}), metadata())
    assert diff == [], diff


def _kill_other_connections(app):
    """What a PostgreSQL restart does to every connection in the app's pool (from outside it)."""
    engine = make_engine(app.extensions["lantian"].settings.database_url)
    with engine.connect() as conn:
        conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ))
        conn.rollback()
    engine.dispose()


@needs_postgres("killing backends needs a PostgreSQL server")
def test_a_lost_database_connection_is_a_503_and_the_next_request_works(app, station, monkeypatch):
    from core import db as core_db

    monkeypatch.setattr(core_db, "IDLE_PING_AFTER_S", 3600.0)  # a connection in steady use is not pinged
    assert station.post_json("/api/v1/remote-sensing/events", event("before")).status_code == 202
    _kill_other_connections(app)
    lost = station.post_json("/api/v1/remote-sensing/events", event("during"))
    assert lost.status_code == 503 and lost.headers["Retry-After"] == "1"
    assert lost.get_json()["error"]["code"] == "database_unavailable"
    # The pool replaced its connections: the station's retry is stored as new.
    assert station.post_json("/api/v1/remote-sensing/events", event("during")).status_code == 202


@needs_postgres("killing backends needs a PostgreSQL server")
def test_an_idle_pooled_connection_is_tested_before_use(app, station, monkeypatch):
    from core import db as core_db

    assert station.post_json("/api/v1/remote-sensing/events", event("before")).status_code == 202
    monkeypatch.setattr(core_db, "IDLE_PING_AFTER_S", 0.0)  # every pooled connection counts as idle
    _kill_other_connections(app)
    assert station.post_json("/api/v1/remote-sensing/events", event("after")).status_code == 202


@needs_postgres("the driver connection is PostgreSQL's")
def test_a_station_request_gives_its_connection_back_in_transaction_mode(app, station):
    """Station requests run their statements in autocommit; a Session later handed the same
    pooled connection must get transactions again, or its rollbacks would undo nothing."""
    assert station.post_json("/api/v1/remote-sensing/events", event("mode")).status_code == 202
    engine = app.extensions["lantian"].engine
    idle = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        assert idle and not any(c.driver_connection.autocommit for c in idle)
    finally:
        for c in idle:
            c.close()
