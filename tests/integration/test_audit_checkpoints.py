"""Audit checkpoints: the chain alone cannot show its newest records deleted or the whole
chain rewritten; a signed checkpoint kept outside the database can."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select

from core import audit
from lantian.cli import cli
from tests.conftest import cli_json


@pytest.fixture()
def trail(app, runner, tmp_path):
    for n in range(6):
        cli_json(runner, "orgs", "create", "--code", f"O{n}", "--kind", "repair_station", "--name", "M",
                 "--region", "320200")
    line = runner.invoke(cli, ["audit", "checkpoint"]).output.strip()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "audit-checkpoints-2026-12.jsonl").write_text(line + "\n")
    return folder


def verify(runner, folder) -> tuple[int, dict]:
    result = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(folder)])
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


def test_a_checkpoint_is_a_signed_head_and_verify_passes_while_the_chain_extends_it(app, runner, trail):
    line = json.loads((trail / "audit-checkpoints-2026-12.jsonl").read_text())
    assert line["count"] == 6 and len(line["hash"]) == 64 and len(line["sig"]) == 64
    cli_json(runner, "orgs", "create", "--code", "O9", "--kind", "repair_station", "--name", "M", "--region", "320200")
    assert verify(runner, trail) == (0, {"ok": True, "checked": 7, "broken_at": None, "problem": None,
                                         "checkpoints": 1})


def _records(app):
    return app.extensions["lantian"].sessions()


@pytest.mark.parametrize("newest", [1, 3, 6])
def test_deleting_the_newest_records_is_detected(app, runner, trail, newest):
    with _records(app) as s, s.begin():
        top = s.scalar(select(func.max(audit.AuditRecord.id)))
        s.execute(delete(audit.AuditRecord).where(audit.AuditRecord.id > top - newest))
    code, report = verify(runner, trail)
    assert code == 1 and report["checkpoint"].endswith("audit-checkpoints-2026-12.jsonl:1")
    assert "missing" in report["problem"]


def test_a_rewritten_chain_is_detected(app, runner, trail):
    with _records(app) as s, s.begin():
        records = s.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.id)).all()
        records[2].data = {"code": "forged"}
        prev = audit.GENESIS
        for record in records:  # re-hashed from the genesis: the chain alone looks whole
            record.prev_hash = prev
            record.hash = prev = audit._digest(record)
    code, report = verify(runner, trail)
    assert code == 1 and report["broken_at"] is None and "rewritten" in report["problem"]


def test_an_edit_is_detected_by_the_chain(app, runner, trail):
    with _records(app) as s, s.begin():
        s.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.id)).all()[1].actor = "someone else"
    code, report = verify(runner, trail)
    assert code == 1 and report["broken_at"] is not None


def test_a_checkpoint_signed_with_another_key_or_edited_fails(app, runner, trail):
    path = trail / "audit-checkpoints-2026-12.jsonl"
    line = json.loads(path.read_text())
    path.write_text(json.dumps({**line, "count": line["count"] - 1}) + "\n")
    code, report = verify(runner, trail)
    assert code == 1 and "signature" in report["problem"]


def test_the_worker_job_appends_a_checkpoint_every_period(app, settings, tmp_path, monkeypatch):
    from core import runtime
    from workers import jobs
    from workers.runner import periodic_jobs

    folder = tmp_path / "cp"
    with_dir = settings.model_copy(update={"audit_checkpoint_dir": str(folder)})
    assert ("workers.jobs.audit_checkpoint", 3600) in periodic_jobs(with_dir)
    assert all(path != "workers.jobs.audit_checkpoint" for path, _ in periodic_jobs(settings))
    rt = app.extensions["lantian"]
    monkeypatch.setattr(rt, "settings", with_dir)
    runtime.activate(rt)
    jobs.audit_checkpoint()
    jobs.audit_checkpoint()
    lines = [line for f in folder.iterdir() for line in f.read_text().splitlines()]
    assert len(lines) == 2
    assert audit.parse_checkpoint(lines[0], settings.secret_key).count == 0
