"""The station-facing remote-sensing API."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy import select

from core.errors import Conflict, NotFound
from core.identity import Role, Station
from core.registry import Vehicle
from core.web import (
    confirm_station,
    db,
    driver,
    error_response,
    json_body,
    require_station,
    runtime,
    station_or_person,
    validation_fields,
)
from remote_sensing import ingest
from remote_sensing.models import Event, PolicyRecord, VerdictRevision
from remote_sensing.validity import compute_vsp
from schemas.common import may_hold_unstorable
from schemas.events import Accepted, BatchIn, BatchOut, EventIn, EventOut

blp = Blueprint("remote_sensing", __name__, url_prefix="/api/v1/remote-sensing", description="Remote-sensing events")


KIND = "remote_sensing"


def _store() -> ingest.Store:
    rt = runtime()
    if not rt.postgres:
        return ingest.SessionStore(db())
    return ingest.DriverStore(driver(), rt.dispatcher, g.station.unconfirmed, lambda: confirm_station(KIND))


@blp.errorhandler(413)
def _too_large(_err: Exception) -> Response:
    settings = runtime().settings
    size = f"{settings.max_body_bytes} bytes ({settings.max_body_bytes / 2**20:g} MiB)"
    return error_response(413, "body_too_large", (
        f"the body is over the {size} limit; send events in batches of at most {settings.max_batch_events} "
        f"to POST /api/v1/remote-sensing/events/batch, each body under {size}"))


# `remembered`: the hottest route skips reading the station when the request is signed with
# the credentials this process last read; its insert is conditional on them (see DriverStore).
@blp.post("/events")
@require_station(KIND, remembered=True)
@blp.doc(requestBody={"content": {"application/json": {"schema": EventIn}}})
@blp.response(202, Accepted)
@blp.alt_response(200, schema=Accepted, description="the same event again (replay)")
def post_event() -> Response:
    """Send one remote-sensing event.

    Stored durably before the answer: 202 the first time, 200 with the same `id` when the same
    `event_id` comes again with the same body, 409 `event_id_conflict` with a different body.
    """
    body = json_body()  # its text is checked here
    outcome = ingest.ingest(_store(), g.station.id, [body], runtime().settings.future_tolerance_s, text_checked=True)[0]
    if outcome.status == ingest.INVALID:
        if g.station.unconfirmed is not None:
            confirm_station(KIND)  # a suspended or re-keyed station hears 401/403, never a 422 first
        raise ValidationError(outcome.errors or {})
    if outcome.status == ingest.CONFLICT:
        raise Conflict(
            f"event_id {outcome.event_id} was already received with a different body", code="event_id_conflict"
        )
    # Already in wire form (Accepted documents it): no schema dump on the hottest route.
    response = jsonify({"id": outcome.id, "status": "received"})
    response.status_code = 200 if outcome.status == ingest.DUPLICATE else 202
    return response


@blp.post("/events/batch")
@require_station(KIND)
@blp.doc(requestBody={"content": {"application/json": {"schema": BatchIn}}})
@blp.response(200, BatchOut)
def post_batch() -> Response:
    """Send up to 500 remote-sensing events in one call.

    Each event is answered on its own, in request order (`received`, `duplicate`, `conflict` or
    `invalid` with its `errors`); one bad event does not reject the others.
    """
    body = json_body(check_text=False)  # each event is checked on its own: one bad event rejects no other
    settings = runtime().settings
    try:
        loaded = BatchIn().load(body if isinstance(body, dict) else {"events": None})
    except ValidationError as err:
        raise ValidationError(validation_fields(err)) from None
    if len(loaded["events"]) > settings.max_batch_events:
        raise ValidationError({"events": [f"at most {settings.max_batch_events} events per batch"]})
    outcomes = ingest.ingest(_store(), g.station.id, loaded["events"], settings.future_tolerance_s,
                             text_checked=not may_hold_unstorable(request.get_data(cache=True)))
    # Already in wire form: dumping 500 results through BatchOut cost ~10% of the request.
    return jsonify({"results": [vars(o) for o in outcomes]})


@blp.get("/events/<int:event_pk>")
@station_or_person(Role.ENV_OFFICER, Role.POLICE)
@blp.response(200, EventOut)
def get_event(event_pk: int) -> dict[str, Any]:
    """Read one event: its validity, verdict and the vehicle it matched."""
    session = db()
    row = session.execute(
        select(Event, Station).join(Station, Station.id == Event.station_id).where(Event.id == event_pk)
    ).first()
    if row is None:
        raise NotFound("no such event")
    event, station = row
    if g.station is not None and g.station.id != event.station_id:
        raise NotFound("no such event")  # as for a missing one: ids of other stations are not probed
    if g.person is not None and not g.person.sees(station.region):
        raise NotFound("no such event")
    policy = session.get(PolicyRecord, event.policy_digest) if event.policy_digest else None
    vehicle = session.get(Vehicle, event.vehicle_id) if event.vehicle_id and event.plate_match != "none" else None
    return present(event, station, policy, vehicle.plate if vehicle else None) | measured(event, station) | {
        "revisions": _revisions(session, event.id)}


def _revisions(session: Any, event_pk: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(VerdictRevision, PolicyRecord.version)
        .join(PolicyRecord, PolicyRecord.digest == VerdictRevision.policy_digest)
        .where(VerdictRevision.event_id == event_pk).order_by(VerdictRevision.rev)
    ).all()
    return [{"at": r.at, "cause_event": r.cause_event, "cause_reset": r.cause_reset, "judged": r.judged,
             "warnings": r.warnings, "violation_ids": r.violation_ids, "withdrawn": r.withdrawn,
             "policy": {"digest": r.policy_digest, "version": version}} for r, version in rows]


def measured(event: Event, station: Station) -> dict[str, Any]:
    """What the station measured and where it stands (API.md section 9), beside the verdict."""
    sent = event.payload
    speed, acceleration, vsp = sent.get("speed_kmh"), sent.get("acceleration_ms2"), sent.get("vsp_kw_t")
    computed = vsp is None and speed is not None and acceleration is not None
    return {
        "lane": sent.get("lane"), "speed_kmh": speed, "acceleration_ms2": acceleration,
        "vsp_kw_t": compute_vsp(speed, acceleration) if computed else vsp, "vsp_computed": computed,
        "measurements": sent.get("measurements") or {}, "conditions": sent.get("conditions") or {},
        "location": station.location, "lat": station.lat, "lon": station.lon,
    }


def present(event: Event, station: Station, policy: PolicyRecord | None, matched_plate: str | None) -> dict[str, Any]:
    plate = event.payload["plate"]
    processed = event.status == "processed"
    return {
        "id": event.id,
        "event_id": event.event_id,
        "station": station.code,
        "status": event.status,
        "measured_at": event.measured_at,
        "received_at": event.received_at,
        "validity": {"valid": event.valid, "reasons": event.reasons or []},
        "verdict": event.verdict,
        "exceeded": event.exceeded or [],
        "warnings": event.warnings or [],
        "judged": event.judged or [],
        "vehicle": {
            "plate": matched_plate or (event.plate_read if processed else plate["number"]),
            "plate_color": plate["color"],
            "match": event.plate_match,
        },
        "fuel_type": event.fuel_type,
        "limits": event.limits,
        "policy": {"digest": policy.digest, "version": policy.version} if policy else None,
        "violation_id": event.violation_id,
    }
