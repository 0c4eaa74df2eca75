"""The comparison point for bench_ingest.py: Flask + marshmallow + one RQ enqueue, nothing else.

`POST /events` parses the JSON body, validates it with a schema shaped like Lantian's
EventIn (nested plate, measurements and conditions, range checks, an aware datetime) and
enqueues one RQ job carrying the event id, the way a naive "one job per event" design
would. `POST /noop` answers 202 without looking at the body: it measures the ceiling
of gunicorn plus the load generator on this machine.

Run: `gunicorn -w 2 --chdir tests/benchmarks bare_app:app` with BARE_REDIS_URL set.
Imports nothing from Lantian on purpose.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from redis import Redis
from rq import Queue

QUEUE_NAME = os.environ.get("BARE_QUEUE", "bench_bare")
PLATE_COLORS = ("blue", "yellow", "green", "yellow_green", "white", "black")
FUELS = ("gasoline", "diesel", "gas", "hybrid", "electric")


class Plate(Schema):
    number = fields.String(required=True, validate=validate.Length(1, 32))
    color = fields.String(required=True, validate=validate.OneOf(PLATE_COLORS))
    confidence = fields.Float(required=True, validate=validate.Range(0, 1))


class Measurements(Schema):
    co_pct = fields.Float(allow_none=True, validate=validate.Range(0, 100))
    co2_pct = fields.Float(allow_none=True, validate=validate.Range(0, 100))
    hc_ppm = fields.Float(allow_none=True, validate=validate.Range(0, 1_000_000))
    no_ppm = fields.Float(allow_none=True, validate=validate.Range(0, 1_000_000))
    opacity_pct = fields.Float(allow_none=True, validate=validate.Range(0, 100))
    ringelmann = fields.Integer(allow_none=True, validate=validate.Range(0, 5))


class Conditions(Schema):
    wind_speed_ms = fields.Float(allow_none=True, validate=validate.Range(0, 80))
    temperature_c = fields.Float(allow_none=True, validate=validate.Range(-60, 70))
    humidity_pct = fields.Float(allow_none=True, validate=validate.Range(0, 100))
    pressure_kpa = fields.Float(allow_none=True, validate=validate.Range(30, 120))


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Regexp(r"^[\x21-\x7e]{1,100}$"))
    measured_at = fields.AwareDateTime(required=True, format="iso")
    lane = fields.Integer(allow_none=True, validate=validate.Range(1, 20))
    plate = fields.Nested(Plate, required=True)
    speed_kmh = fields.Float(required=True, validate=validate.Range(0, 400))
    acceleration_ms2 = fields.Float(required=True, validate=validate.Range(-30, 30))
    vsp_kw_t = fields.Float(allow_none=True, validate=validate.Range(-200, 400))
    measurements = fields.Nested(Measurements, required=True)
    conditions = fields.Nested(Conditions, load_default=dict)
    fuel_type_observed = fields.String(allow_none=True, validate=validate.OneOf(FUELS))


schema = EventSchema()
app = Flask("bare")
_queue: Queue | None = None


def queue() -> Queue:
    global _queue
    if _queue is None:  # built after gunicorn forks
        redis = Redis.from_url(os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/11"))
        _queue = Queue(QUEUE_NAME, connection=redis, serializer="rq.serializers.JSONSerializer")
    return _queue


def noop_job(event_id: str) -> str:
    return event_id


@app.post("/events")
def post_event() -> Response:
    try:
        body = json.loads(request.get_data())
    except ValueError:
        return Response('{"error":"malformed_json"}', 400, mimetype="application/json")
    try:
        data = schema.load(body)
    except ValidationError as err:
        return Response(json.dumps({"error": err.messages}), 422, mimetype="application/json")
    job = queue().enqueue("bare_app.noop_job", data["event_id"], result_ttl=60)
    return Response(json.dumps({"id": job.id, "status": "received"}), 202, mimetype="application/json")


@app.post("/noop")
def noop() -> Response:
    request.get_data()
    return Response('{"status":"received"}', 202, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', 200, mimetype="application/json")
