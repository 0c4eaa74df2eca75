"""LANTIAN_READ_DATABASE_URL: listings, plate queries and statistics read a real hot standby;
what a person writes, and reads back by id, goes to the primary (docs/scaling.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.settings import Settings
from tests.conftest import cli_json, needs_postgres
from tests.factories import CST, vehicle
from tests.migration_db import upgrade
from tests.standby import primary_and_standby, wait_until

needs_standby = needs_postgres("a streaming standby is built from the PostgreSQL server binaries")


@pytest.fixture()
def replicated(tmp_path: Any) -> Any:
    from lantian.app import create_app

    with primary_and_standby() as pair:
        upgrade(pair.primary_url, "heads")
        app = create_app(Settings(
            database_url=pair.primary_url, read_database_url=pair.standby_url, redis_url=None,
            secret_key="test-secret-key-that-is-at-least-32-bytes", media_dir=str(tmp_path / "media"),
        ))
        app.config["TESTING"] = True
        yield app
        rt = app.extensions["lantian"]
        rt.engine.dispose()
        rt.read_engine.dispose()


def _token(app: Any, role: str) -> dict[str, str]:
    cli_json(app.test_cli_runner(), "users", "create", "--username", role, "--password", "pw-" + role, "--role", role)
    r = app.test_client().post("/api/v1/auth/token", json={"username": role, "password": "pw-" + role})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": "Bearer " + r.get_json()["access_token"]}


def _failed_test(client: Any, headers: dict[str, str], plate: str) -> dict[str, Any]:
    r = client.post("/api/v1/supervisory-tests", headers=headers, json={
        "plate": plate, "plate_color": "yellow", "tested_at": (datetime.now(CST) - timedelta(hours=1)).isoformat(),
        "kind": "road_check", "method": "free_acceleration", "results": {}, "passed": False,
    })
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _on_standby(app: Any, sql: str) -> Any:
    with app.extensions["lantian"].read_engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
        conn.commit()
        return value


@needs_standby
def test_listings_read_the_standby_and_reads_by_id_the_primary(replicated):
    app, client = replicated, replicated.test_client()
    transport, officer, police = (_token(app, role) for role in ("transport", "env_officer", "police"))
    r = client.put("/api/v1/registry/vehicles", headers=transport,
                   json={"vehicles": [vehicle("苏B12345"), vehicle("苏B54321")]})
    assert r.status_code == 200, r.get_json()

    assert _on_standby(app, "SELECT pg_is_in_recovery()") is True
    first = _failed_test(client, officer, "苏B12345")
    wait_until(lambda: _on_standby(app, "SELECT count(*) FROM violations") == 1)
    assert [v["id"] for v in client.get("/api/v1/violations", headers=police).get_json()["items"]] == [
        first["violation_id"]]

    # With replay paused, the standby holds still: a new violation is on the primary only.
    _on_standby(app, "SELECT pg_wal_replay_pause()")
    second = _failed_test(client, officer, "苏B54321")
    assert len(client.get("/api/v1/violations", headers=police).get_json()["items"]) == 1
    assert client.get("/api/v1/cases", headers=police).get_json()["items"][0]["id"] == first["case_id"]
    assert client.get("/api/v1/vehicles/苏B54321", headers=police).get_json()["open_case"] is None
    # ... while a read by id, as after a step, comes from the primary.
    assert client.get(f"/api/v1/cases/{second['case_id']}", headers=police).status_code == 200
    assert client.get(f"/api/v1/violations/{second['violation_id']}", headers=police).status_code == 200

    _on_standby(app, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: _on_standby(app, "SELECT count(*) FROM violations") == 2)
    assert len(client.get("/api/v1/violations", headers=police).get_json()["items"]) == 2

    ready = client.get("/readyz").get_json()
    assert ready["checks"]["database"] == "ok" and ready["checks"]["read_database"] == "ok"


def test_without_a_standby_reads_share_the_request_session(app):
    rt = app.extensions["lantian"]
    assert rt.read_engine is rt.engine and rt.read_sessions is rt.sessions
