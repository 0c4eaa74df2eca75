"""judgement state per vehicle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import core.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rs_vehicle_runs",
        sa.Column("vehicle_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("measured_at", core.db.UTCDateTime(), nullable=False),
        sa.Column(
            "runs",
            sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=Text()),
                                                    "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_rs_vehicle_runs_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_rs_vehicle_runs")),
    )


def downgrade() -> None:
    op.drop_table("rs_vehicle_runs")
