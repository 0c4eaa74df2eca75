"""event partitions: rs_events by month of measured_at, idempotency keys apart

Revision ID: 0014_event_partitions
Revises: 0013_claim_shards
Create Date: 2026-12-03

`rs_event_keys` (id, station_id, event_id, measured_at) takes over the idempotency key
(station_id, event_id) and the id sequence of rs_events: every existing event gets its key
with its id, and the sequence goes on from the highest id. The revisions' foreign key moves
to it (a partitioned table's ids are unique per partition only).

PostgreSQL: rs_events becomes `PARTITION BY RANGE (measured_at)`, primary key
(id, measured_at), one partition per UTC month from the data's first month to three months
ahead, and a DEFAULT partition for what falls outside them (the worker's partition sweep,
core.partitions, creates later months and moves such rows into them). The rows are copied
into the partitions and the old table dropped: the upgrade rewrites rs_events once (minutes
at 10 M rows; run it in a maintenance window), and rebuilds its indexes after the copy.
SQLite keeps one table and loses only the unique constraint.
"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0014_event_partitions"
down_revision = "0013_claim_shards"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WAITING = "status = 'received'"
_TESTED = "status = 'processed' AND valid IS TRUE AND vehicle_id IS NOT NULL"
_PROCESSED = "status = 'processed'"
_INDEXES = (  # as 0001..0013 made them
    ("ix_rs_events_pending", ["id"], _WAITING),
    ("ix_rs_events_pending_shard", ["claim_shard", "id"], _WAITING),
    ("ix_rs_events_vehicle_time", ["vehicle_id", "measured_at"], None),
    ("ix_rs_events_station_time", ["station_id", "measured_at"], None),
    ("ix_rs_events_tested", ["measured_at", "vehicle_id", "station_id"], _TESTED),
    ("ix_rs_events_measured", ["measured_at", "station_id", "valid", "verdict"], _PROCESSED),
)
MONTHS_AHEAD = 3


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _partition_events(bind: sa.Connection) -> None:
    op.execute("ALTER TABLE rs_events RENAME TO rs_events_0013")
    op.execute("ALTER TABLE rs_events_0013 DROP CONSTRAINT pk_rs_events")
    op.execute("ALTER TABLE rs_events_0013 DROP CONSTRAINT uq_rs_events_station_id_event_id")
    for name, _, _ in _INDEXES:
        op.drop_index(name, table_name="rs_events_0013")
    # The columns as they are, without the old id sequence's default.
    op.execute("CREATE TABLE rs_events (LIKE rs_events_0013 INCLUDING CONSTRAINTS) PARTITION BY RANGE (measured_at)")
    op.execute("ALTER TABLE rs_events ALTER COLUMN claim_shard SET DEFAULT '0'")
    op.create_primary_key("pk_rs_events", "rs_events", ["id", "measured_at"])
    for column, target, key in (("station_id", "stations", "id"), ("vehicle_id", "vehicles", "id"),
                                ("policy_digest", "policies", "digest")):
        op.create_foreign_key(f"fk_rs_events_{column}_{target}", "rs_events", target, [column], [key])

    first = bind.scalar(sa.text("SELECT date_trunc('month', min(measured_at)) FROM rs_events_0013"))
    today = datetime.now(UTC).date()
    month = min(first.date(), today) if first is not None else today
    month, last = date(month.year, month.month, 1), date(today.year, today.month, 1)
    for _ in range(MONTHS_AHEAD):
        last = _next(last)
    while month <= last:
        op.execute(f"CREATE TABLE rs_events_y{month.year:04d}m{month.month:02d} PARTITION OF rs_events "
                   f"FOR VALUES FROM ('{month.isoformat()}') TO ('{_next(month).isoformat()}')")
        month = _next(month)
    op.execute("CREATE TABLE rs_events_default PARTITION OF rs_events DEFAULT")

    op.execute("INSERT INTO rs_events SELECT * FROM rs_events_0013")
    op.execute("DROP TABLE rs_events_0013")
    for name, columns, where in _INDEXES:
        op.create_index(name, "rs_events", columns, postgresql_where=sa.text(where) if where else None)
    op.execute("ANALYZE rs_events")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "rs_event_keys",
        sa.Column("id", _ID, nullable=False),
        sa.Column("station_id", _ID, nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("measured_at", core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name="fk_rs_event_keys_station_id_stations"),
        sa.PrimaryKeyConstraint("id", name="pk_rs_event_keys"),
        sa.UniqueConstraint("station_id", "event_id", name="uq_rs_event_keys_station_id_event_id"),
    )
    op.execute("INSERT INTO rs_event_keys (id, station_id, event_id, measured_at) "
               "SELECT id, station_id, event_id, measured_at FROM rs_events")
    with op.batch_alter_table("rs_verdict_revisions") as batch:
        batch.drop_constraint("fk_rs_verdict_revisions_event_id_rs_events", type_="foreignkey")
        batch.create_foreign_key("fk_rs_verdict_revisions_event_id_rs_event_keys", "rs_event_keys",
                                 ["event_id"], ["id"])
    if bind.dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('rs_event_keys', 'id'), "
                   "(SELECT coalesce(max(id), 0) + 1 FROM rs_event_keys), false)")
        _partition_events(bind)
    else:
        with op.batch_alter_table("rs_events") as batch:
            batch.drop_constraint("uq_rs_events_station_id_event_id", type_="unique")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE TABLE rs_events_0014 AS SELECT * FROM rs_events")
        op.execute("DROP TABLE rs_events")
        op.execute("ALTER TABLE rs_events_0014 RENAME TO rs_events")
        op.execute("CREATE SEQUENCE rs_events_id_seq OWNED BY rs_events.id")
        op.execute("SELECT setval('rs_events_id_seq', (SELECT coalesce(max(id), 0) + 1 FROM rs_event_keys), false)")
        op.execute("ALTER TABLE rs_events ALTER COLUMN id SET DEFAULT nextval('rs_events_id_seq')")
        op.execute("ALTER TABLE rs_events ALTER COLUMN claim_shard SET DEFAULT '0'")
        op.create_primary_key("pk_rs_events", "rs_events", ["id"])
        for column, target, key in (("station_id", "stations", "id"), ("vehicle_id", "vehicles", "id"),
                                    ("policy_digest", "policies", "digest")):
            op.create_foreign_key(f"fk_rs_events_{column}_{target}", "rs_events", target, [column], [key])
        for name, columns, where in _INDEXES:
            op.create_index(name, "rs_events", columns, postgresql_where=sa.text(where) if where else None)
    with op.batch_alter_table("rs_events") as batch:
        batch.create_unique_constraint("uq_rs_events_station_id_event_id", ["station_id", "event_id"])
    with op.batch_alter_table("rs_verdict_revisions") as batch:
        batch.drop_constraint("fk_rs_verdict_revisions_event_id_rs_event_keys", type_="foreignkey")
        batch.create_foreign_key("fk_rs_verdict_revisions_event_id_rs_events", "rs_events", ["event_id"], ["id"])
    op.drop_table("rs_event_keys")
