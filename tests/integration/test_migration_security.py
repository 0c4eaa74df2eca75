"""0008_security on a database made by 0007_judge, holding data: station secrets are sealed in place
(stations keep signing), people keep their accounts, and the way back opens the secrets again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from core.keys import SecretBox
from lantian.cli import alembic_config
from tests.integration.test_migrations import NOW, _seed_0005, scratch  # noqa: F401 (fixture)
from tests.migration_db import connect, upgrade

KEY = "migration-test-station-key"


def _to(url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(url)
    config.attributes["station_key_encryption_key"] = KEY
    (command.downgrade if down else command.upgrade)(config, revision)


def test_0008_seals_station_secrets_and_keeps_users(scratch):  # noqa: F811
    upgrade(scratch, "0005")
    with connect(scratch) as conn:
        _seed_0005(conn)
    upgrade(scratch, "0007_judge")
    with connect(scratch) as conn:
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, active, created_at) "
                          f"VALUES (1, 'wang', 'h', 'police', true, '{NOW}')"))
    _to(scratch, "0008_security")
    with connect(scratch) as conn:
        sealed = conn.execute(text("SELECT secret FROM stations WHERE code = 'RS1'")).scalar_one()
        assert sealed != "s" and SecretBox(KEY).open(sealed) == "s"
        assert tuple(conn.execute(text("SELECT username, token_version FROM users")).one()) == ("wang", 0)
        conn.execute(text(f"INSERT INTO signin_failures (username, address, at) VALUES ('wang', '::1', '{NOW}')"))
    _to(scratch, "0007_judge", down=True)
    with connect(scratch) as conn:
        assert conn.execute(text("SELECT secret FROM stations")).scalar_one() == "s"
