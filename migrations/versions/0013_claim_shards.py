"""claim shards: judges claim waiting events by shard of the plate as read

Revision ID: 0013_claim_shards
Revises: 0012_evidence_json
Create Date: 2026-12-02

`rs_events.claim_shard` (0..15, `remote_sensing.models.claim_shard`) is set at ingest, and a
partial index of the waiting events by (claim_shard, id) serves each shard's claim. Every
existing row gets 0: events already judged never use it, and events still waiting are
claimed from shard 0 as before, one judge at a time. On PostgreSQL the column with a
constant default is added without rewriting the table; the partial index reads it once.
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_claim_shards"
down_revision = "0012_evidence_json"
branch_labels = None
depends_on = None

_WAITING = "status = 'received'"


def upgrade() -> None:
    op.add_column("rs_events", sa.Column("claim_shard", sa.SmallInteger(), nullable=False, server_default="0"))
    op.create_index("ix_rs_events_pending_shard", "rs_events", ["claim_shard", "id"],
                    postgresql_where=sa.text(_WAITING), sqlite_where=sa.text(_WAITING))


def downgrade() -> None:
    op.drop_index("ix_rs_events_pending_shard", table_name="rs_events")
    with op.batch_alter_table("rs_events") as batch:
        batch.drop_column("claim_shard")
