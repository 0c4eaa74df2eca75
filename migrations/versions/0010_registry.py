"""registry over time: versions of the facts violations record, and every inspection cycle

Revision ID: 0010_registry
Revises: 0009_plates
Create Date: 2026-12-02

Each registered vehicle's current row becomes its first version (holding from its `registered_on`,
else the day the row was created; the first version also answers for the days before it) and its current cycle
its first cycle row. Provisional vehicles have no version, as new ones have none. Nothing
existing is changed.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = "0010_registry"
down_revision = "0009_plates"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vehicle_versions",
        sa.Column("id", BIG, nullable=False),
        sa.Column("vehicle_id", BIG, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("fleet_id", BIG, nullable=True),
        sa.Column("use_nature", sa.String(length=16), nullable=True),
        sa.Column("fuel_type", sa.String(length=16), nullable=True),
        sa.Column("region", sa.String(length=6), nullable=True),
        sa.Column("recorded_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_vehicle_versions_vehicle_id_vehicles")),
        sa.ForeignKeyConstraint(["fleet_id"], ["fleets.id"], name=op.f("fk_vehicle_versions_fleet_id_fleets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_versions")),
    )
    op.create_index("ix_vehicle_versions_vehicle", "vehicle_versions", ["vehicle_id", "valid_from", "id"])
    op.create_table(
        "inspection_cycles",
        sa.Column("id", BIG, nullable=False),
        sa.Column("vehicle_id", BIG, nullable=False),
        sa.Column("last_on", sa.Date(), nullable=False),
        sa.Column("next_due_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_inspection_cycles_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_cycles")),
        sa.UniqueConstraint("vehicle_id", "last_on", name=op.f("uq_inspection_cycles_vehicle_id_last_on")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "COALESCE(registered_on, CAST(created_at AS DATE))" if postgres else "COALESCE(registered_on, date(created_at))"
    now = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')" if postgres else "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO vehicle_versions (vehicle_id, valid_from, fleet_id, use_nature, fuel_type, region, recorded_at) "
        f"SELECT id, {day}, fleet_id, use_nature, fuel_type, region, {now} FROM vehicles WHERE registered"
    )
    op.execute(
        "INSERT INTO inspection_cycles (vehicle_id, last_on, next_due_on, recorded_at) "
        f"SELECT id, cycle_last_on, cycle_next_due_on, {now} FROM vehicles "
        "WHERE cycle_last_on IS NOT NULL AND cycle_next_due_on IS NOT NULL AND cycle_next_due_on > cycle_last_on"
    )


def downgrade() -> None:
    op.drop_table("inspection_cycles")
    op.drop_index("ix_vehicle_versions_vehicle", table_name="vehicle_versions")
    op.drop_table("vehicle_versions")
