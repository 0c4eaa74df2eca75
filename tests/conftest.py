"""Fixtures: a real database (LANTIAN_TEST_DATABASE_URL, default a SQLite file) and, when
LANTIAN_TEST_REDIS_URL is set, a real Redis with real RQ workers; otherwise jobs run inline.
"""

from __future__ import annotations

import faulthandler
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from core import identity
from core.settings import Settings

TEST_DB = os.environ.get("LANTIAN_TEST_DATABASE_URL")
TEST_REDIS = os.environ.get("LANTIAN_TEST_REDIS_URL")


def needs_postgres(why: str) -> pytest.MarkDecorator:
    """For a test of what only a PostgreSQL server does (row locks, killed connections);
    the suite's PostgreSQL pass runs it."""
    return pytest.mark.skipif(not (TEST_DB or "").startswith("postgresql"), reason=why)


@pytest.fixture()
def hang_guard() -> Iterator[None]:
    """Ends the run (exit 1, every thread's traceback on stderr) when the test outlives 30 s, even
    while it holds the GIL in C code, which no signal handler or timer thread can interrupt."""
    faulthandler.dump_traceback_later(30, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = TEST_DB or f"sqlite:///{tmp_path_factory.mktemp('db') / 'lantian.db'}"
    from alembic import command

    from lantian.cli import alembic_config

    if url.startswith("postgresql"):
        from sqlalchemy import create_engine

        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    command.upgrade(alembic_config(url), "heads")
    return url


@pytest.fixture()
def settings(database_url: str, tmp_path: Any) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=TEST_REDIS,
        secret_key="test-secret-key-that-is-at-least-32-bytes",
        station_key_encryption_key="test-station-key-encryption-key",
        instance_dir=str(tmp_path / "instance"),
        media_dir=str(tmp_path / "media"),
        queue_name="lantian-test",
        judge_linger_ms=0,  # tests drain on purpose; the real-worker test runs with the default
    )


def _clean(app: Flask) -> None:
    from lantian.models import metadata

    rt = app.extensions["lantian"]
    tables = [t.name for t in reversed(metadata().sorted_tables)]
    with rt.engine.begin() as conn:
        if rt.engine.dialect.name == "postgresql":
            # A connection an earlier test left in a transaction fails this test at once,
            # naming the lock, instead of hanging the run.
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    if rt.redis is not None:
        rt.redis.flushdb()


@pytest.fixture()
def app(settings: Settings) -> Iterator[Flask]:
    from lantian.app import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    _clean(app)
    yield app
    app.extensions["lantian"].engine.dispose()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture()
def drain(app: Flask) -> Any:
    """Run queued jobs to completion: a real RQ worker in burst mode, or nothing when inline."""

    def _drain() -> None:
        rt = app.extensions["lantian"]
        if rt.rq_queue is None:
            return
        from rq import SimpleWorker

        worker = SimpleWorker([rt.rq_queue], connection=rt.redis, serializer="rq.serializers.JSONSerializer")
        worker.work(burst=True, with_scheduler=False)

    return _drain


def cli_json(runner: Any, *args: str) -> dict[str, Any]:
    from lantian.cli import cli

    result = runner.invoke(cli, args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


class StationClient:
    """Signs each request exactly as a station must (API.md section 2)."""

    def __init__(self, client: FlaskClient, key_id: str, secret: str) -> None:
        self.client, self.key_id, self.secret = client, key_id, secret

    def headers(self, method: str, path: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
        ts = str(int(at if at is not None else time.time()))
        return {
            "X-Station-Key": self.key_id,
            "X-Timestamp": ts,
            "X-Signature": identity.sign(self.secret, method, path, ts, body),
        }

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
                **kw: Any) -> Any:
        headers = self.headers(method, path, body)
        headers.update(kw.pop("headers", {}))
        return self.client.open(path, method=method, data=body, content_type=content_type, headers=headers, **kw)

    def post_json(self, path: str, obj: Any) -> Any:
        return self.request("POST", path, json.dumps(obj, ensure_ascii=False).encode())

    def get(self, path: str) -> Any:
        return self.request("GET", path)


@pytest.fixture()
def make_station(client: FlaskClient, runner: Any) -> Any:
    def _make(code: str = "RS001", kind: str = "remote_sensing", region: str = "320200", **opts: str) -> StationClient:
        args = ["stations", "create", "--code", code, "--kind", kind, "--region", region]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", value]
        created = cli_json(runner, *args)
        return StationClient(client, created["key_id"], created["secret"])

    return _make


@pytest.fixture()
def station(make_station: Any) -> StationClient:
    return make_station()


@pytest.fixture()
def login(client: FlaskClient, runner: Any) -> Any:
    """Create a person and return Authorization headers for them."""

    def _login(role: str, region: str | None = None, org: str | None = None, username: str | None = None) -> dict:
        username = username or f"{role}-{region or 'all'}-{org or 'x'}"
        args = ["users", "create", "--username", username, "--password", "pw-" + username, "--role", role]
        if region:
            args += ["--region", region]
        if org:
            args += ["--org", org]
        cli_json(runner, *args)
        response = client.post("/api/v1/auth/token", json={"username": username, "password": "pw-" + username})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": "Bearer " + response.get_json()["access_token"]}

    return _login


@pytest.fixture()
def registry(client: FlaskClient, login: Any) -> Any:
    """Register vehicles (registry bodies) as an admin."""
    admin = login("admin")

    def _register(*vehicles: dict) -> None:
        r = client.put("/api/v1/registry/vehicles", json={"vehicles": list(vehicles)}, headers=admin)
        assert r.status_code == 200, r.get_json()

    return _register
