"""event retention: counts of dropped events and the months retained

Revision ID: 0015_event_retention
Revises: 0014_event_partitions
Create Date: 2026-12-03

Three new tables, empty until the worker first retains a month (remote_sensing.retention):
rs_event_counts and rs_tested_vehicles keep what the statistics read of the events a
retained month dropped, rs_retained_months the months retained. Nothing existing changes.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision = "0015_event_retention"
down_revision = "0014_event_partitions"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rs_event_counts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("hour", core.db.UTCDateTime(), nullable=False),
        sa.Column("station_id", _ID, nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("fuel_type", sa.String(length=16), nullable=True),
        sa.Column("exceeded", _JSON, nullable=True),
        sa.Column("reasons", _JSON, nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name="fk_rs_event_counts_station_id_stations"),
        sa.PrimaryKeyConstraint("id", name="pk_rs_event_counts"),
    )
    op.create_index("ix_rs_event_counts_hour", "rs_event_counts", ["hour", "station_id"])
    op.create_table(
        "rs_tested_vehicles",
        sa.Column("id", _ID, nullable=False),
        sa.Column("hour", core.db.UTCDateTime(), nullable=False),
        sa.Column("station_id", _ID, nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name="fk_rs_tested_vehicles_station_id_stations"),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name="fk_rs_tested_vehicles_vehicle_id_vehicles"),
        sa.PrimaryKeyConstraint("id", name="pk_rs_tested_vehicles"),
    )
    op.create_index("ix_rs_tested_vehicles_hour", "rs_tested_vehicles", ["hour", "station_id"])
    op.create_table(
        "rs_retained_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.Column("events_counted", sa.Integer(), nullable=False),
        sa.Column("events_kept", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", name="pk_rs_retained_months"),
    )


def downgrade() -> None:
    op.drop_table("rs_retained_months")
    op.drop_index("ix_rs_tested_vehicles_hour", table_name="rs_tested_vehicles")
    op.drop_table("rs_tested_vehicles")
    op.drop_index("ix_rs_event_counts_hour", table_name="rs_event_counts")
    op.drop_table("rs_event_counts")
