"""evidence_json: each violation keeps its evidence as the API writes it

Revision ID: 0012_evidence_json
Revises: 0011_jurisdiction
Create Date: 2026-12-02

A nullable text column: existing violations keep every value and read their evidence as
before (assembled from the events, snapshots and tests when read); `lantian violations
keep-evidence` writes it for them, in batches, while the service runs. Adding a nullable
column without a default rewrites nothing on PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_evidence_json"
down_revision = "0011_jurisdiction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("violations", sa.Column("evidence_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("violations") as batch:
        batch.drop_column("evidence_json")
