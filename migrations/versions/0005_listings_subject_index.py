"""listings by subject: a vehicle's or fleet's entries without a scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_listings_subject", "listings", ["subject_type", "subject_id", "listed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_listings_subject", table_name="listings")
