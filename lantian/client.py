"""A small station client: signs each request, retries, and keeps an offline buffer on disk.

For station vendors and for tests that drive a live server. A record (an event or a snapshot)
is first written to a SQLite file, then sent; the buffer is drained oldest first, so a
station that loses its uplink keeps what it measured, in order, across restarts.

What each answer means for a record (API.md sections 2, 4 and 5):

- 202 received, 200 the same record again (a retry whose first answer was lost): delivered;
- network errors, 5xx and 429: retried with the same bytes (so the same `event_id`) after an
  exponential backoff, honouring `Retry-After`; after `attempts` tries draining stops and the
  record stays first in the buffer for the next drain;
- 401 and 403: draining stops and the record stays: the station's key, clock or suspension
  is at fault, not the record, and sending it again will not help until that is fixed;
- any other 4xx (400, 409 `event_id_conflict`, 413, 422, ...): final: the record moves to the
  `rejected` table with the server's answer, for a person to look at, and draining goes on.

It uses the standard library (urllib, sqlite3) and the server's own signing function.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from os import PathLike
from typing import Any

from core.identity import signature_headers

EVENTS_PATH = "/api/v1/remote-sensing/events"
SNAPSHOTS_PATH = "/api/v1/black-smoke/snapshots"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, path TEXT NOT NULL,
    content_type TEXT NOT NULL, body BLOB NOT NULL, queued_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, path TEXT NOT NULL, content_type TEXT NOT NULL,
    body BLOB NOT NULL, status INTEGER NOT NULL, answer TEXT NOT NULL, rejected_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Answer:
    """What the server said about one record (`status` 0: no answer at all)."""

    event_id: str
    status: int
    body: Any = None

    @property
    def delivered(self) -> bool:
        return self.status in (200, 202)

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def station_refused(self) -> bool:
        return self.status in (401, 403)


@dataclass
class DrainReport:
    delivered: list[Answer] = field(default_factory=list)
    rejected: list[Answer] = field(default_factory=list)
    pending: int = 0
    stopped_by: Answer | None = None  # the answer that stopped draining, when it stopped early


@dataclass(frozen=True)
class Image:
    filename: str
    data: bytes
    content_type: str = "image/jpeg"


def multipart(metadata: dict[str, Any], images: Sequence[Image]) -> tuple[bytes, str]:
    """The snapshot upload as one `multipart/form-data` body and its content type."""
    boundary = uuid.uuid4().hex
    parts = [_part(boundary, 'name="metadata"', "application/json",
                   json.dumps(metadata, ensure_ascii=False).encode())]
    parts += [_part(boundary, f'name="images"; filename="{image.filename}"', image.content_type, image.data)
              for image in images]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _part(boundary: str, disposition: str, content_type: str, data: bytes) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return head.encode() + data + b"\r\n"


class StationClient:
    """One station's sender: `send_event` / `send_snapshot` buffer a record and drain the buffer."""

    def __init__(self, base_url: str, key_id: str, secret: str, buffer_path: str | PathLike[str], *,
                 timeout_s: float = 10.0, attempts: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")  # scheme://host[:port]; the signed path is the request's own
        self.key_id, self.secret = key_id, secret
        self.timeout_s, self.attempts = timeout_s, attempts
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.sleep, self.clock = sleep, clock
        self.db = sqlite3.connect(buffer_path, isolation_level=None)  # autocommit: each write is durable at once
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- buffering -------------------------------------------------------------------------

    def buffer(self, event_id: str, path: str, body: bytes, content_type: str) -> None:
        self.db.execute("INSERT INTO outbox (event_id, path, content_type, body, queued_at) VALUES (?, ?, ?, ?, ?)",
                        (event_id, path, content_type, body, self.clock()))

    def send_event(self, event: dict[str, Any]) -> DrainReport:
        """Buffer one remote-sensing event, then drain the buffer."""
        self.buffer(event["event_id"], EVENTS_PATH, json.dumps(event, ensure_ascii=False).encode(),
                    "application/json")
        return self.drain()

    def send_snapshot(self, metadata: dict[str, Any], images: Sequence[Image]) -> DrainReport:
        """Buffer one black-smoke snapshot (its exact multipart bytes), then drain the buffer."""
        body, content_type = multipart(metadata, images)
        self.buffer(metadata["event_id"], SNAPSHOTS_PATH, body, content_type)
        return self.drain()

    def pending(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def rejected(self) -> list[Answer]:
        rows = self.db.execute("SELECT event_id, status, answer FROM rejected ORDER BY id").fetchall()
        return [Answer(event_id, status, json.loads(answer)) for event_id, status, answer in rows]

    # --- sending ---------------------------------------------------------------------------

    def drain(self) -> DrainReport:
        """Send buffered records oldest first, until the buffer is empty or one cannot go now."""
        report = DrainReport()
        while (row := self.db.execute(
                "SELECT id, event_id, path, content_type, body FROM outbox ORDER BY id LIMIT 1").fetchone()):
            pk, event_id, path, content_type, body = row
            answer = self._deliver(pk, event_id, path, content_type, body)
            if answer.delivered:
                self.db.execute("DELETE FROM outbox WHERE id = ?", (pk,))
                report.delivered.append(answer)
            elif answer.retryable or answer.station_refused:
                report.stopped_by = answer
                break
            else:
                self._reject(pk, answer)
                report.rejected.append(answer)
        report.pending = self.pending()
        return report

    def _deliver(self, pk: int, event_id: str, path: str, content_type: str, body: bytes) -> Answer:
        """Up to `attempts` tries with the same bytes; the last answer."""
        attempt = 1
        while True:
            self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (pk,))
            answer, retry_after = self._post(event_id, path, content_type, body)
            if not answer.retryable or attempt >= self.attempts:
                return answer
            self.sleep(self._delay(attempt, retry_after))
            attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (stations coming back together do not all retry at once)."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s) * random.uniform(0.5, 1.0)

    def _post(self, event_id: str, path: str, content_type: str, body: bytes) -> tuple[Answer, float | None]:
        headers = signature_headers(self.key_id, self.secret, "POST", path, body, str(int(self.clock())))
        request = urllib.request.Request(self.base_url + path, data=body, method="POST",
                                         headers={**headers, "Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return Answer(event_id, response.status, _json(response.read())), None
        except urllib.error.HTTPError as err:
            return Answer(event_id, err.code, _json(err.read())), _retry_after(err.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError) as err:  # refused, reset, timed out: no answer
            return Answer(event_id, 0, {"error": {"code": "no_answer", "message": str(err)}}), None

    def _reject(self, pk: int, answer: Answer) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT INTO rejected (id, event_id, path, content_type, body, status, answer, rejected_at) "
                "SELECT id, event_id, path, content_type, body, ?, ?, ? FROM outbox WHERE id = ?",
                (answer.status, json.dumps(answer.body, ensure_ascii=False), self.clock(), pk))
            self.db.execute("DELETE FROM outbox WHERE id = ?", (pk,))


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return {"text": data.decode(errors="replace")}


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
