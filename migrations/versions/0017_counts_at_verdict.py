"""counts at the verdict: rs_event_counts holds every judged event, not only retained ones

Revision ID: 0017_counts_at_verdict
Revises: 0016_snapshot_partitions
Create Date: 2026-12-03

From now on the judge counts each first verdict into rs_event_counts (remote_sensing.counts)
and the statistics read only the counts. This adds `merged` (the sweep merges the judges'
rows per hour and station; retention's rows are merged already) with a partial index of the
unmerged rows, and counts the judged events stored so far: every one after the end of the
latest retained month (those before it were counted by retention). The count is frozen
here as SQL: it must keep meaning what it meant when this revision was written.
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_counts_at_verdict"
down_revision = "0016_snapshot_partitions"
branch_labels = None
depends_on = None

_COLUMNS = "hour, station_id, valid, verdict, fuel_type, exceeded, reasons, n, merged"
_KIND = "station_id, valid, verdict, fuel_type, exceeded, reasons"
# The end of the latest retained month, as a UTC timestamp (the column's storage on each database).
_MARK = {
    "postgresql": "(SELECT max(month) + interval '1 month' FROM rs_retained_months)",
    "sqlite": "(SELECT strftime('%Y-%m-%d %H:%M:%S.000000', max(month), '+1 month') FROM rs_retained_months)",
}
_HOUR = {
    "postgresql": "date_trunc('hour', measured_at)",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', measured_at)",
}


def upgrade() -> None:
    with op.batch_alter_table("rs_event_counts") as batch:
        batch.add_column(sa.Column("merged", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.execute("UPDATE rs_event_counts SET merged = true")
    op.create_index("ix_rs_event_counts_unmerged", "rs_event_counts", ["hour", "station_id"],
                    postgresql_where=sa.text("NOT merged"), sqlite_where=sa.text("NOT merged"))
    dialect = op.get_bind().dialect.name
    op.execute(
        f"INSERT INTO rs_event_counts ({_COLUMNS}) "
        f"SELECT {_HOUR[dialect]}, {_KIND}, count(*), true FROM rs_events "
        f"WHERE status = 'processed' AND ({_MARK[dialect]} IS NULL OR measured_at >= {_MARK[dialect]}) "
        f"GROUP BY {_HOUR[dialect]}, {_KIND}"
    )


def downgrade() -> None:
    # Back to counts of retained months only: the rows after the retention mark go.
    dialect = op.get_bind().dialect.name
    op.execute(f"DELETE FROM rs_event_counts WHERE {_MARK[dialect]} IS NULL OR hour >= {_MARK[dialect]}")
    op.drop_index("ix_rs_event_counts_unmerged", table_name="rs_event_counts")
    with op.batch_alter_table("rs_event_counts") as batch:
        batch.drop_column("merged")
