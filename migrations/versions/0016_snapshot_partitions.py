"""snapshot partitions: bs_snapshots by month of captured_at, idempotency keys apart

Revision ID: 0016_snapshot_partitions
Revises: 0015_event_retention
Create Date: 2026-12-03

As 0014 did for rs_events: `bs_snapshot_keys` (id, station_id, event_id, captured_at) takes
over the key (station_id, event_id) and the id sequence, every existing snapshot gets its
key with its id, and suspected_clones' foreign key moves to it. PostgreSQL: bs_snapshots
becomes `PARTITION BY RANGE (captured_at)` with a partition per UTC month from the data's
first month to three ahead and a DEFAULT partition; the rows are copied (one rewrite of the
table) and the indexes rebuilt after. SQLite keeps one table and loses only the unique
constraint.
"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0016_snapshot_partitions"
down_revision = "0015_event_retention"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INDEXES = (  # as 0002 made them
    ("ix_bs_snapshots_unanalysed", ["id"], "analysed_at IS NULL"),
    ("ix_bs_snapshots_queue", ["status", "estimated_level", "id"], None),
    ("ix_bs_snapshots_region", ["region", "id"], None),
)
_FKS = (("station_id", "stations"), ("vehicle_id", "vehicles"))
MONTHS_AHEAD = 3


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _partition_snapshots(bind: sa.Connection) -> None:
    op.execute("ALTER TABLE bs_snapshots RENAME TO bs_snapshots_0015")
    op.execute("ALTER TABLE bs_snapshots_0015 DROP CONSTRAINT pk_bs_snapshots")
    op.execute("ALTER TABLE bs_snapshots_0015 DROP CONSTRAINT uq_bs_snapshots_station_id_event_id")
    for name, _, _ in _INDEXES:
        op.drop_index(name, table_name="bs_snapshots_0015")
    op.execute("CREATE TABLE bs_snapshots (LIKE bs_snapshots_0015 INCLUDING CONSTRAINTS) "
               "PARTITION BY RANGE (captured_at)")
    op.create_primary_key("pk_bs_snapshots", "bs_snapshots", ["id", "captured_at"])
    for column, target in _FKS:
        op.create_foreign_key(f"fk_bs_snapshots_{column}_{target}", "bs_snapshots", target, [column], ["id"])

    first = bind.scalar(sa.text("SELECT date_trunc('month', min(captured_at)) FROM bs_snapshots_0015"))
    today = datetime.now(UTC).date()
    month = min(first.date(), today) if first is not None else today
    month, last = date(month.year, month.month, 1), date(today.year, today.month, 1)
    for _ in range(MONTHS_AHEAD):
        last = _next(last)
    while month <= last:
        op.execute(f"CREATE TABLE bs_snapshots_y{month.year:04d}m{month.month:02d} PARTITION OF bs_snapshots "
                   f"FOR VALUES FROM ('{month.isoformat()}') TO ('{_next(month).isoformat()}')")
        month = _next(month)
    op.execute("CREATE TABLE bs_snapshots_default PARTITION OF bs_snapshots DEFAULT")

    op.execute("INSERT INTO bs_snapshots SELECT * FROM bs_snapshots_0015")
    op.execute("DROP TABLE bs_snapshots_0015")
    for name, columns, where in _INDEXES:
        op.create_index(name, "bs_snapshots", columns, postgresql_where=sa.text(where) if where else None)
    op.execute("ANALYZE bs_snapshots")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "bs_snapshot_keys",
        sa.Column("id", _ID, nullable=False),
        sa.Column("station_id", _ID, nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("captured_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name="fk_bs_snapshot_keys_station_id_stations"),
        sa.PrimaryKeyConstraint("id", name="pk_bs_snapshot_keys"),
        sa.UniqueConstraint("station_id", "event_id", name="uq_bs_snapshot_keys_station_id_event_id"),
    )
    op.execute("INSERT INTO bs_snapshot_keys (id, station_id, event_id, captured_at) "
               "SELECT id, station_id, event_id, captured_at FROM bs_snapshots")
    with op.batch_alter_table("suspected_clones") as batch:
        batch.drop_constraint("fk_suspected_clones_snapshot_id_bs_snapshots", type_="foreignkey")
        batch.create_foreign_key("fk_suspected_clones_snapshot_id_bs_snapshot_keys", "bs_snapshot_keys",
                                 ["snapshot_id"], ["id"])
    if bind.dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('bs_snapshot_keys', 'id'), "
                   "(SELECT coalesce(max(id), 0) + 1 FROM bs_snapshot_keys), false)")
        _partition_snapshots(bind)
    else:
        with op.batch_alter_table("bs_snapshots") as batch:
            batch.drop_constraint("uq_bs_snapshots_station_id_event_id", type_="unique")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE TABLE bs_snapshots_0016 AS SELECT * FROM bs_snapshots")
        op.execute("DROP TABLE bs_snapshots")
        op.execute("ALTER TABLE bs_snapshots_0016 RENAME TO bs_snapshots")
        op.execute("CREATE SEQUENCE bs_snapshots_id_seq OWNED BY bs_snapshots.id")
        op.execute("SELECT setval('bs_snapshots_id_seq', "
                   "(SELECT coalesce(max(id), 0) + 1 FROM bs_snapshot_keys), false)")
        op.execute("ALTER TABLE bs_snapshots ALTER COLUMN id SET DEFAULT nextval('bs_snapshots_id_seq')")
        op.create_primary_key("pk_bs_snapshots", "bs_snapshots", ["id"])
        for column, target in _FKS:
            op.create_foreign_key(f"fk_bs_snapshots_{column}_{target}", "bs_snapshots", target, [column], ["id"])
        for name, columns, where in _INDEXES:
            op.create_index(name, "bs_snapshots", columns, postgresql_where=sa.text(where) if where else None)
    with op.batch_alter_table("bs_snapshots") as batch:
        batch.create_unique_constraint("uq_bs_snapshots_station_id_event_id", ["station_id", "event_id"])
    with op.batch_alter_table("suspected_clones") as batch:
        batch.drop_constraint("fk_suspected_clones_snapshot_id_bs_snapshot_keys", type_="foreignkey")
        batch.create_foreign_key("fk_suspected_clones_snapshot_id_bs_snapshots", "bs_snapshots",
                                 ["snapshot_id"], ["id"])
    op.drop_table("bs_snapshot_keys")
