"""evidence over time: violation status and facts at detection, case closing reasons, station windows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Existing violations stay active and take their vehicle's current region, fleet and use
nature as the facts at detection (the only record there is); existing stations take the
default calibration start, 730 days before their creation.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import core.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=Text()), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("violations") as batch:
        batch.add_column(sa.Column("vehicle_region", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("fleet_id", BIG, nullable=True))
        batch.add_column(sa.Column("use_nature", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="active", nullable=False))
        batch.add_column(sa.Column("withdrawn_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("withdrawn_by_event", BIG, nullable=True))
        batch.add_column(sa.Column("withdrawn_at", core.db.UTCDateTime(), nullable=True))
        batch.create_foreign_key(op.f("fk_violations_fleet_id_fleets"), "fleets", ["fleet_id"], ["id"])
    op.execute(
        "UPDATE violations SET vehicle_region = (SELECT region FROM vehicles WHERE vehicles.id = violations.vehicle_id),"
        " fleet_id = (SELECT fleet_id FROM vehicles WHERE vehicles.id = violations.vehicle_id),"
        " use_nature = (SELECT use_nature FROM vehicles WHERE vehicles.id = violations.vehicle_id)"
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("closed_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("retest_passed", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch.add_column(sa.Column("review_required", JSON, server_default="[]", nullable=False))
    op.execute("UPDATE cases SET closed_reason = 'retest_passed', retest_passed = true WHERE status = 'closed'")
    with op.batch_alter_table("penalties") as batch:
        batch.add_column(sa.Column("violation_ids", JSON, nullable=True))
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("review_required", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("calibrated_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("location", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch.add_column(sa.Column("lon", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE stations SET calibrated_from = created_at::date - 730")
    else:
        op.execute("UPDATE stations SET calibrated_from = date(created_at, '-730 days')")


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        for name in ("lon", "lat", "location", "calibrated_from"):
            batch.drop_column(name)
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("review_required")
    with op.batch_alter_table("penalties") as batch:
        batch.drop_column("violation_ids")
    with op.batch_alter_table("cases") as batch:
        for name in ("review_required", "retest_passed", "closed_reason"):
            batch.drop_column(name)
    with op.batch_alter_table("violations") as batch:
        batch.drop_constraint(op.f("fk_violations_fleet_id_fleets"), type_="foreignkey")
        for name in ("withdrawn_at", "withdrawn_by_event", "withdrawn_reason", "status", "use_nature", "fleet_id",
                     "vehicle_region"):
            batch.drop_column(name)
