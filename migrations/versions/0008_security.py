"""security: token versions, sign-in failures, station secrets sealed at rest

Revision ID: 0008_security
Revises: 0007_judge
Create Date: 2026-12-01

Existing station secrets are encrypted in place with the station key encryption key (the
one `lantian db upgrade` runs with: LANTIAN_STATION_KEY_ENCRYPTION_KEY, or the instance
folder's); stations keep signing with the secrets they have. Existing tokens carry no
version and stop working: people sign in again once.
"""
import sqlalchemy as sa
from alembic import context, op

import core.db

revision = "0008_security"
down_revision = "0007_judge"
branch_labels = None
depends_on = None


def _box():  # type: ignore[no-untyped-def]
    from core import keys
    from core.settings import Settings

    key = context.config.attributes.get("station_key_encryption_key")
    return keys.SecretBox(key or keys.resolved(Settings()).station_key_encryption_key or "")


def _rewrite_secrets(change) -> None:  # type: ignore[no-untyped-def]
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, secret FROM stations")).all()
    if rows:
        box = _box()
        for pk, secret in rows:
            conn.execute(sa.text("UPDATE stations SET secret = :s WHERE id = :id"), {"s": change(box, secret), "id": pk})


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_failures_username_at", "signin_failures", ["username", "at"])
    op.create_index("ix_signin_failures_address_at", "signin_failures", ["address", "at"])
    with op.batch_alter_table("stations") as batch:
        batch.alter_column("secret", existing_type=sa.String(128), type_=sa.String(255), existing_nullable=False)
    _rewrite_secrets(lambda box, secret: box.seal(secret))


def downgrade() -> None:
    _rewrite_secrets(lambda box, sealed: box.open(sealed))
    with op.batch_alter_table("stations") as batch:
        batch.alter_column("secret", existing_type=sa.String(255), type_=sa.String(128), existing_nullable=False)
    op.drop_index("ix_signin_failures_address_at", table_name="signin_failures")
    op.drop_index("ix_signin_failures_username_at", table_name="signin_failures")
    op.drop_table("signin_failures")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
