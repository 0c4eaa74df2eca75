"""plates and stations over time: suspension intervals, violation corrections, suspected cloned plates

Revision ID: 0009_plates
Revises: 0008_security
Create Date: 2026-12-01

A station suspended when this runs gets an open suspension interval starting at its latest
`station.suspended` audit record (the only record of when it began), or at the upgrade when
there is none. Nothing existing is changed.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0009_plates"
down_revision = "0008_security"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "station_suspensions",
        sa.Column("id", BIG, nullable=False),
        sa.Column("station_id", BIG, nullable=False),
        sa.Column("from_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("until_at", core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_station_suspensions_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_suspensions")),
    )
    op.create_index("ix_station_suspensions_station", "station_suspensions", ["station_id", "from_at"])
    now = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')" if op.get_bind().dialect.name == "postgresql" else "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO station_suspensions (station_id, from_at) "
        "SELECT s.id, COALESCE((SELECT MAX(a.at) FROM audit_records a WHERE a.action = 'station.suspended' "
        f"AND a.subject_type = 'station' AND a.subject_id = s.code), {now}) "
        "FROM stations s WHERE s.suspended"
    )
    op.create_table(
        "violation_corrections",
        sa.Column("id", BIG, nullable=False),
        sa.Column("violation_id", BIG, nullable=False),
        sa.Column("from_vehicle_id", BIG, nullable=False),
        sa.Column("to_vehicle_id", BIG, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_by", sa.String(length=100), nullable=False),
        sa.Column("corrected_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["violation_id"], ["violations.id"],
                                name=op.f("fk_violation_corrections_violation_id_violations")),
        sa.ForeignKeyConstraint(["from_vehicle_id"], ["vehicles.id"],
                                name=op.f("fk_violation_corrections_from_vehicle_id_vehicles")),
        sa.ForeignKeyConstraint(["to_vehicle_id"], ["vehicles.id"],
                                name=op.f("fk_violation_corrections_to_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation_corrections")),
    )
    op.create_index(op.f("ix_violation_corrections_violation_id"), "violation_corrections", ["violation_id"])
    op.create_table(
        "suspected_clones",
        sa.Column("id", BIG, nullable=False),
        sa.Column("snapshot_id", BIG, nullable=False),
        sa.Column("vehicle_id", BIG, nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("captured_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("ringelmann", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reported_by", sa.String(length=100), nullable=False),
        sa.Column("reported_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["bs_snapshots.id"],
                                name=op.f("fk_suspected_clones_snapshot_id_bs_snapshots")),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_suspected_clones_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suspected_clones")),
        sa.UniqueConstraint("snapshot_id", name=op.f("uq_suspected_clones_snapshot_id")),
    )
    op.create_index("ix_suspected_clones_region", "suspected_clones", ["region", "reported_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_suspected_clones_region", table_name="suspected_clones")
    op.drop_table("suspected_clones")
    op.drop_index(op.f("ix_violation_corrections_violation_id"), table_name="violation_corrections")
    op.drop_table("violation_corrections")
    op.drop_index("ix_station_suspensions_station", table_name="station_suspensions")
    op.drop_table("station_suspensions")
