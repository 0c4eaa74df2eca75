"""Health, readiness, metrics, the OpenAPI document and migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from lantian.cli import alembic_config
from lantian.models import metadata


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
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata())
    assert diff == [], diff
