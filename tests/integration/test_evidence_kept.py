"""Each violation keeps its evidence when it is judged, and answers embed that text
(enforcement.evidence.keep and views): it must read byte for byte as the evidence assembled
from the events, snapshots and tests, and a violation from before migration 0012 (none kept)
must answer the same until `lantian violations keep-evidence` has written it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from core import json_format
from enforcement import evidence
from enforcement.models import Violation
from tests.conftest import cli_json
from tests.integration.test_cases import PLATE, Loop
from tests.integration.test_evidence import _two_exceedances
from tests.integration.test_judgement_over_time import HIGH, LOW, post


def stored(app: Any) -> dict[int, tuple[str | None, str]]:
    """Each violation's kept evidence next to the evidence assembled from its sources now."""
    with app.extensions["lantian"].sessions() as s:
        rows = s.execute(select(Violation.id, Violation.source, Violation.source_ref, Violation.details,
                                Violation.evidence_json).order_by(Violation.id)).all()
        found = evidence.evidence_of(s, (r[:4] for r in rows))
        return {r.id: (r.evidence_json, json_format.encode(found.get(r.id, {})).decode()) for r in rows}


def forget_kept(app: Any) -> None:
    """The state of violations judged before migration 0012."""
    with app.extensions["lantian"].sessions() as s, s.begin():
        s.execute(update(Violation).values(evidence_json=None))


def answers(client: Any, headers: dict[str, str], ids: list[int], case_ids: list[int]) -> list[bytes]:
    paths = ["/api/v1/cases", "/api/v1/violations", f"/api/v1/vehicles/{PLATE}",
             *(f"/api/v1/violations/{i}" for i in ids), *(f"/api/v1/cases/{i}" for i in case_ids)]
    bodies = []
    for path in paths:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.get_json())
        bodies.append(r.get_data())
    return bodies


def test_every_source_keeps_the_evidence_its_answers_show(app, client, login, make_station, drain, runner):
    from tests.integration.test_black_smoke import UPLOAD, jpeg, metadata, upload

    _two_exceedances(make_station, drain)
    Loop(client, login, runner).open_case(results={"opacity_m1": 2.1})
    smoke = make_station("BS001", kind="black_smoke")
    r = upload(smoke, metadata("bs-1", plate=PLATE), [jpeg()])
    assert r.status_code == 202, r.get_json()
    drain()
    r = client.post(f"{UPLOAD}/{r.get_json()['id']}/review", headers=login("env_officer", "320200", username="wang"),
                    json={"decision": "confirm", "ringelmann": 4, "note": "dense plume"})
    assert r.status_code == 200, r.get_json()

    kept = stored(app)
    with app.extensions["lantian"].sessions() as s:
        sources = sorted(s.scalars(select(Violation.source)))
        case_ids = sorted(set(s.scalars(select(Violation.case_id))))
    assert sources == ["black_smoke", "remote_sensing", "road_check"]
    assert all(doc == assembled for doc, assembled in kept.values())  # kept when judged, for each source

    police = login("police", username="police-kept")
    before = answers(client, police, sorted(kept), case_ids)
    assert b'"no_ppm":1700' in before[0] and b'"opacity_m1":2.1' in before[2]  # in the case page and the plate
    forget_kept(app)
    assert answers(client, police, sorted(kept), case_ids) == before  # assembled when read: the same bytes
    assert cli_json(runner, "violations", "keep-evidence", "--batch", "2") == {"kept": 3}
    assert stored(app) == kept
    assert answers(client, police, sorted(kept), case_ids) == before
    assert cli_json(runner, "violations", "keep-evidence") == {"kept": 0}  # nothing left to do


def test_a_reinstated_violation_keeps_its_new_run(app, station, drain):
    post(station, drain, "a", 0, HIGH)
    b = post(station, drain, "b", 6, HIGH)
    post(station, drain, "pass", 2, LOW)  # withdraws b's violation
    x = post(station, drain, "x", 4, HIGH)  # x+b is a run again: reinstated with a new run
    [(doc, assembled)] = stored(app).values()
    assert doc == assembled
    assert [e["id"] for e in json_format.Raw(doc).value()["events"]] == [x, b]
