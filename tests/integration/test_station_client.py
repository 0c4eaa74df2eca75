"""The station client against a live server on a loopback port: signing, retries with the same
event_id, the offline buffer across a restart, and what is final."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WsgiRequest
from werkzeug.wrappers import Response

from lantian.client import Image, StationClient
from remote_sensing.models import Event, Snapshot
from tests.factories import event, rfc3339
from tests.unit.synthetic_smoke import Scene, render_jpeg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A WSGI app served on a loopback port from a thread, stopped and started at will."""

    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture()
def serve(app: Any) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def _serve(wsgi: Any = None, *, port: int | None = None, start: bool = True) -> LiveServer:
        server = LiveServer(wsgi or app, port or free_port())
        if start:
            server.start()
        servers.append(server)
        return server

    yield _serve
    for server in servers:
        server.stop()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def make_client(tmp_path: Any, station: Any) -> Iterator[Callable[..., StationClient]]:
    clients: list[StationClient] = []

    def _make(url: str, *, secret: str | None = None, **kw: Any) -> StationClient:
        kw.setdefault("sleep", Sleeps())
        client = StationClient(url, station.key_id, secret or station.secret, tmp_path / "buffer.sqlite", **kw)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()


def stored_event_ids(app: Any) -> list[str]:
    with app.extensions["lantian"].sessions() as session:
        return list(session.scalars(select(Event.event_id).order_by(Event.id)))


def test_an_event_is_signed_and_sent_and_a_replay_is_answered_200(app, serve, make_client):
    client = make_client(serve().url)
    sent = event("RS001-1")
    first = client.send_event(sent)
    assert [(a.event_id, a.status) for a in first.delivered] == [("RS001-1", 202)] and first.pending == 0
    again = client.send_event(sent)
    assert [a.status for a in again.delivered] == [200]
    assert again.delivered[0].body["id"] == first.delivered[0].body["id"]
    assert stored_event_ids(app) == ["RS001-1"]


def test_a_server_that_is_down_keeps_records_on_disk_and_they_go_in_order_when_it_is_back(app, serve, make_client):
    server = serve(start=False)  # nothing listens on its port yet
    client = make_client(server.url, attempts=3, backoff_s=1.0)
    for n in (1, 2, 3):
        report = client.send_event(event(f"RS001-{n}"))
        assert report.delivered == [] and report.stopped_by.status == 0
    assert client.pending() == 3
    # Three tries for the first record each time, with growing (jittered) waits between them.
    assert len(client.sleep) == 3 * 2 and all(0.5 <= s <= 1.0 for s in client.sleep[::2])
    assert all(1.0 <= s <= 2.0 for s in client.sleep[1::2])
    client.close()

    server.start()
    restarted = make_client(server.url)  # the same buffer file, as after a station restart
    assert restarted.pending() == 3
    report = restarted.drain()
    assert [a.event_id for a in report.delivered] == ["RS001-1", "RS001-2", "RS001-3"]
    assert report.pending == 0 and report.stopped_by is None
    assert stored_event_ids(app) == ["RS001-1", "RS001-2", "RS001-3"]


def test_a_lost_answer_is_retried_with_the_same_event_id_and_stored_once(app, serve, make_client):
    calls: list[int] = []

    @WsgiRequest.application
    def proxy(request: WsgiRequest) -> Response:
        calls.append(1)
        client = app.test_client()
        answer = client.open(request.path, method=request.method, data=request.get_data(),
                             headers=dict(request.headers))
        if len(calls) == 1:  # the event is stored, but the station never hears so
            return Response("upstream answer lost", status=502)
        return Response(answer.data, status=answer.status_code, content_type=answer.content_type)

    client = make_client(serve(proxy).url)
    report = client.send_event(event("RS001-lost"))
    assert [a.status for a in report.delivered] == [200]  # the retry is a replay
    assert len(calls) == 2 and len(client.sleep) == 1
    assert stored_event_ids(app) == ["RS001-lost"]


def test_a_5xx_with_retry_after_waits_as_told(app, serve, make_client):
    calls: list[int] = []

    def busy_once(environ: dict, start_response: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            WsgiRequest(environ).get_data()
            busy = Response('{"error": {"code": "database_unavailable", "message": "retry"}}', status=503,
                            content_type="application/json", headers={"Retry-After": "7"})
            return busy(environ, start_response)
        return app(environ, start_response)

    client = make_client(serve(busy_once).url)
    assert [a.status for a in client.send_event(event("RS001-busy")).delivered] == [202]
    assert client.sleep == [7.0]


def test_refused_records_are_final_and_the_rest_still_go(app, serve, make_client):
    client = make_client(serve().url)
    sent = event("RS001-a")
    assert client.send_event(sent).delivered
    bad = event("RS001-bad", speed_kmh=-5)  # physically impossible: 422
    changed = {**sent, "speed_kmh": 51.0}  # the same event_id with another body: 409
    client.buffer(bad["event_id"], "/api/v1/remote-sensing/events", _json(bad), "application/json")
    client.buffer(changed["event_id"], "/api/v1/remote-sensing/events", _json(changed), "application/json")
    report = client.send_event(event("RS001-b"))
    assert [(a.event_id, a.status) for a in report.rejected] == [("RS001-bad", 422), ("RS001-a", 409)]
    assert report.rejected[1].body["error"]["code"] == "event_id_conflict"
    assert [a.event_id for a in report.delivered] == ["RS001-b"] and report.pending == 0
    assert [a.status for a in client.rejected()] == [422, 409]
    assert client.sleep == []  # never retried
    assert stored_event_ids(app) == ["RS001-a", "RS001-b"]


def test_a_refused_signature_stops_draining_and_keeps_the_records(app, serve, make_client):
    client = make_client(serve().url, secret="not-the-secret")
    report = client.send_event(event("RS001-1"))
    assert report.stopped_by.status == 401 and report.pending == 1 and client.rejected() == []
    assert client.sleep == []
    assert stored_event_ids(app) == []


def test_a_snapshot_is_sent_as_signed_multipart(app, serve, make_station, tmp_path):
    camera = make_station("BS001", kind="black_smoke")
    client = StationClient(serve().url, camera.key_id, camera.secret, tmp_path / "camera.sqlite", sleep=Sleeps())
    try:
        meta = {"event_id": "BS001-1", "captured_at": rfc3339(datetime.now(UTC) - timedelta(minutes=1)), "lane": 2,
                "plate": {"number": "苏B12345", "color": "yellow", "confidence": 0.95}, "camera_ringelmann": 3}
        image = Image("0.jpg", render_jpeg(Scene(width=640, height=360, blackness=0.65, seed=1)))
        assert [a.status for a in client.send_snapshot(meta, [image]).delivered] == [202]
        assert [a.status for a in client.send_snapshot(meta, [image]).delivered] == [200]
    finally:
        client.close()
    with app.extensions["lantian"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Snapshot)) == 1


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()
