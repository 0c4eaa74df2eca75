"""The evidence behind violations (API.md section 9), loaded set-based for a page.

For `remote_sensing` every event of the judged run, for `black_smoke` the snapshot and its
review, for a supervisory test the test. One statement per kind of source, whatever the
number of violations, so a listing pays at most three reads for its evidence.

Evidence names no person (no officer, no owner, no VIN): M and I stations read it too.

What it shows does not change once a violation is judged (events, snapshots, reviews and
tests are not rewritten), so `keep` writes it once, as the API writes it, into
`violations.evidence_json`, and pages embed that text (`views`). A violation without it
(from before migration 0012, or one whose keeping was skipped) is assembled when read:
the same bytes, as tests/integration/test_evidence_kept.py checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from core import json_format
from core.db import is_postgres, update_many
from core.identity import Station
from enforcement.models import SupervisoryTest, Violation
from remote_sensing.models import Event, Snapshot
from remote_sensing.snapshots import IMAGE_URL
from schemas.cases import TEST_KINDS

# (id, source, source_ref, details) of each violation.
ViolationRef = tuple[int, str, str, dict[str, Any]]


def run_event_ids(details: Any) -> list[int]:
    """The events of the judged run: `details["events"]` when the judge stored the run,
    else the one event that completed it (`details["event_id"]`)."""
    if not isinstance(details, dict):
        return []
    run = details.get("events")
    if isinstance(run, list) and all(isinstance(i, int) for i in run):
        return list(run)
    one = details.get("event_id")
    return [one] if isinstance(one, int) and not isinstance(one, bool) else []


def _ref(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def station_view(station: Any) -> dict[str, Any]:
    return {"code": station.code, "name": station.name, "location": station.location, "lat": station.lat,
            "lon": station.lon}


# What an event's evidence shows, read as plain columns: ORM entities (and the event's other
# JSON columns: runs, reasons, verdicts) cost most of a case page's time.
# Built once, with expanding parameters: compiling a statement for each page's id list
# cost as much as running it.
_EVENTS = select(Event.id, Event.event_id, Event.measured_at, Event.payload, Event.plate_match, Event.limits,
                 Event.exceeded, Event.station_id).where(Event.id.in_(bindparam("ids", expanding=True)))
_STATIONS = select(Station.id, Station.code, Station.name, Station.location, Station.lat, Station.lon).where(
    Station.id.in_(bindparam("ids", expanding=True)))


def event_view(event: Any, station: dict[str, Any]) -> dict[str, Any]:
    """One measurement as an officer weighs it: the values, the limits applied, the conditions."""
    sent = event.payload
    return {
        "id": event.id, "event_id": event.event_id, "measured_at": event.measured_at,
        "station": station, "lane": sent.get("lane"), "speed_kmh": sent.get("speed_kmh"),
        "acceleration_ms2": sent.get("acceleration_ms2"), "vsp_kw_t": sent.get("vsp_kw_t"),
        "measurements": sent.get("measurements") or {}, "conditions": sent.get("conditions") or {},
        "plate": sent.get("plate"), "match": event.plate_match, "limits": event.limits,
        "exceeded": event.exceeded or [],
    }


def snapshot_view(snapshot: Snapshot, station: Any) -> dict[str, Any]:
    return {
        "snapshot": {
            "id": snapshot.id, "captured_at": snapshot.captured_at, "station": station_view(station),
            "lane": snapshot.payload.get("lane"), "plate": snapshot.payload.get("plate"),
            "camera_ringelmann": snapshot.camera_ringelmann, "estimated_ringelmann": snapshot.estimated_level,
            "images": [IMAGE_URL.format(id=snapshot.id, n=n) for n in range(len(snapshot.images))],
        },
        "review": {"reviewed_at": snapshot.reviewed_at, "ringelmann": snapshot.reviewed_level,
                   "note": snapshot.review_note},
    }


def supervisory_view(test: SupervisoryTest) -> dict[str, Any]:
    return {"test": {"id": test.id, "kind": test.kind, "method": test.method, "tested_at": test.tested_at,
                     "results": test.results, "passed": test.passed, "location": test.location,
                     "region": test.region}}


def evidence_of(session: Session, violations: Iterable[ViolationRef]) -> dict[int, dict[str, Any]]:
    """Each violation's evidence by violation id (what is not found is left out, never guessed)."""
    wanted = list(violations)
    runs = {vid: run_event_ids(details) for vid, source, _, details in wanted if source == "remote_sensing"}
    smoke = {vid: _ref(ref) for vid, source, ref, _ in wanted if source == "black_smoke"}
    tests = {vid: _ref(ref) for vid, source, ref, _ in wanted if source in TEST_KINDS}
    out: dict[int, dict[str, Any]] = {}
    event_ids = sorted({i for ids in runs.values() for i in ids})
    if event_ids:
        rows = session.execute(_EVENTS, {"ids": event_ids}).all()
        stations = {st.id: station_view(st) for st in session.execute(
            _STATIONS, {"ids": sorted({r.station_id for r in rows})})}
        events = {r.id: event_view(r, stations[r.station_id]) for r in rows}
        for vid, ids in runs.items():
            out[vid] = {"events": sorted((events[i] for i in ids if i in events), key=lambda e: e["measured_at"])}
    out |= {vid: {"events": []} for vid in runs if vid not in out}
    snapshot_ids = sorted({i for i in smoke.values() if i is not None})
    if snapshot_ids:
        snaps = {s.id: snapshot_view(s, st) for s, st in session.execute(
            select(Snapshot, Station).join(Station, Station.id == Snapshot.station_id)
            .where(Snapshot.id.in_(snapshot_ids)))}
        out |= {vid: snaps[ref] for vid, ref in smoke.items() if ref in snaps}
    test_ids = sorted({i for i in tests.values() if i is not None})
    if test_ids:
        found = {t.id: supervisory_view(t) for t in session.scalars(
            select(SupervisoryTest).where(SupervisoryTest.id.in_(test_ids)))}
        out |= {vid: found[ref] for vid, ref in tests.items() if ref in found}
    return out


def keep(session: Session, violations: Sequence[Violation | Row[Any]]) -> None:
    """Write each violation's evidence as the API writes it, once its sources are stored
    (for remote sensing: after the judge has saved the batch's verdicts)."""
    found = evidence_of(session, ((v.id, v.source, v.source_ref, v.details) for v in violations))
    update_many(session, Violation.__table__, [
        {"id": v.id, "evidence_json": json_format.encode(found.get(v.id, {})).decode()} for v in violations])


def keep_missing(session: Session, after: int, batch: int) -> tuple[int, int]:
    """Keep the evidence of up to `batch` violations after id `after` that keep none (from
    before migration 0012); answers how many and the last id done (0 and `after`: none left).

    A row a judge holds is skipped (the judge writes what it reinstates; a later run takes the
    rest), so the old details are never written over the new."""
    query = (select(Violation.id, Violation.source, Violation.source_ref, Violation.details)
             .where(Violation.id > after, Violation.evidence_json.is_(None)).order_by(Violation.id).limit(batch))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    keep(session, rows)
    return len(rows), rows[-1].id if rows else after


_KEPT = select(Violation.id, Violation.evidence_json).where(Violation.id.in_(bindparam("ids", expanding=True)))


def kept(session: Session, ids: Iterable[int]) -> dict[int, str | None]:
    """The evidence each violation keeps (None: not kept)."""
    wanted = sorted(set(ids))
    return dict(session.execute(_KEPT, {"ids": wanted}).all()) if wanted else {}


def views(session: Session, violations: Iterable[ViolationRef], docs: dict[int, str | None]) -> dict[int, Any]:
    """Each violation's evidence for an answer: the kept text embedded as it is, else assembled now."""
    wanted = list(violations)
    found = evidence_of(session, (v for v in wanted if docs.get(v[0]) is None))
    out: dict[int, Any] = {}
    for vid, *_ in wanted:
        doc = docs.get(vid)
        out[vid] = json_format.Raw(doc) if doc is not None else found.get(vid, {})
    return out
