"""judgement over time: verdict revisions, run resets, run state with its members

Revision ID: 0007_judge
Revises: 0006
Create Date: 2026-12-01

Existing verdict columns stay as they are: they are the first verdicts. The run-state
projection (rs_events.runs, rs_vehicle_runs.runs) moves from {"count", "first"} to the
members of each run ({"members": [[local iso, event id], ...], "last"}), rebuilt per
vehicle from the stored states in measurement order, so every run in progress is kept.
"""
from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import core.db

revision = "0007_judge"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=Text()), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

EVENTS = sa.table(
    "rs_events", sa.column("id", BIG), sa.column("vehicle_id", BIG), sa.column("measured_at", core.db.UTCDateTime()),
    sa.column("runs", JSON), sa.column("judged", JSON),
)
VEHICLE_RUNS = sa.table("rs_vehicle_runs", sa.column("vehicle_id", BIG), sa.column("event_id", BIG),
                        sa.column("runs", JSON))


def upgrade() -> None:
    op.create_table(
        "rs_verdict_revisions",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("event_id", BIG, nullable=False),
        sa.Column("rev", sa.Integer(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.Column("cause_event", BIG, nullable=True),
        sa.Column("cause_reset", BIG, nullable=True),
        sa.Column("judged", JSON, nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("violation_ids", JSON, nullable=False),
        sa.Column("withdrawn", JSON, nullable=False),
        sa.Column("policy_digest", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["rs_events.id"], name=op.f("fk_rs_verdict_revisions_event_id_rs_events")),
        sa.ForeignKeyConstraint(["policy_digest"], ["policies.digest"],
                                name=op.f("fk_rs_verdict_revisions_policy_digest_policies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rs_verdict_revisions")),
        sa.UniqueConstraint("event_id", "rev", name=op.f("uq_rs_verdict_revisions_event_id_rev")),
    )
    op.create_table(
        "rs_run_resets",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("vehicle_id", BIG, nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("case_id", BIG, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_rs_run_resets_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rs_run_resets")),
    )
    op.create_index("ix_rs_run_resets_vehicle_time", "rs_run_resets", ["vehicle_id", "at"])
    op.create_index("ix_rs_run_resets_pending", "rs_run_resets", ["id"],
                    postgresql_where=sa.text("status = 'received'"), sqlite_where=sa.text("status = 'received'"))
    _convert_run_states(op.get_bind(), ZoneInfo(os.environ.get("LANTIAN_TIMEZONE", "Asia/Shanghai")))


def _convert_run_states(conn: sa.Connection, tz: ZoneInfo) -> None:
    """Rebuild each run's members from the legacy per-event states, vehicle by vehicle."""
    rows = conn.execute(
        sa.select(EVENTS.c.id, EVENTS.c.vehicle_id, EVENTS.c.measured_at, EVENTS.c.runs, EVENTS.c.judged)
        .where(EVENTS.c.runs.is_not(None), EVENTS.c.vehicle_id.is_not(None))
        .order_by(EVENTS.c.vehicle_id, EVENTS.c.measured_at, EVENTS.c.id)
    ).all()
    converted: dict[int, dict[str, Any]] = {}
    legacy_of: dict[int, dict[str, Any]] = {}
    vehicle, legacy, members = None, {}, {}
    for pk, vehicle_id, measured_at, runs, judged in rows:
        legacy_of[pk] = runs
        if vehicle_id != vehicle:
            vehicle, legacy, members = vehicle_id, {}, {}
        local = measured_at.astimezone(tz).isoformat()
        converted[pk], members = _convert(runs, legacy, members, judged or [], pk, local)
        legacy = runs
    # Only states that change are written (most events hold no run: {} stays {}).
    updates = [{"pk": pk, "new": runs} for pk, runs in converted.items() if runs != legacy_of[pk]]
    for i in range(0, len(updates), 1000):
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == sa.bindparam("pk")).values(runs=sa.bindparam("new")),
                     updates[i:i + 1000])
    latest = conn.execute(sa.select(VEHICLE_RUNS.c.vehicle_id, VEHICLE_RUNS.c.event_id)).all()
    for vehicle_id, event_id in latest:
        if event_id in converted and converted[event_id] != legacy_of[event_id]:
            conn.execute(sa.update(VEHICLE_RUNS).where(VEHICLE_RUNS.c.vehicle_id == vehicle_id)
                         .values(runs=converted[event_id]))


def _convert(runs: dict[str, Any], legacy: dict[str, Any], members: dict[str, list[list[Any]]], judged: list[str],
             pk: int, local: str) -> tuple[dict[str, Any], dict[str, list[list[Any]]]]:
    """One event's state in the new form, given the previous event's legacy state and members."""
    if "members" in next(iter(runs.values()), {"members": []}):
        return runs, {p: r["members"] for p, r in runs.items()}  # already converted
    now: dict[str, list[list[Any]]] = {}
    for pollutant, run in runs.items():
        before = legacy.get(pollutant)
        if before == run and pollutant in members:
            now[pollutant] = members[pollutant]  # not measured here: carried over
        elif before is not None and before.get("first") == run["first"] and pollutant in members:
            now[pollutant] = members[pollutant] + [[local, pk]]
        else:
            now[pollutant] = [[run["first"], pk]]  # a run begins at this event
    state = {p: {"members": m, "last": m[-1][0]} for p, m in now.items()}
    for pollutant in judged:
        state[pollutant] = {"members": [], "last": local}
    return state, now


def downgrade() -> None:
    op.drop_index("ix_rs_run_resets_pending", table_name="rs_run_resets")
    op.drop_index("ix_rs_run_resets_vehicle_time", table_name="rs_run_resets")
    op.drop_table("rs_run_resets")
    op.drop_table("rs_verdict_revisions")
