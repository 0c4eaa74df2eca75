"""tested months: rs_tested_months holds each vehicle validly measured per local month and region

Revision ID: 0018_tested_months
Revises: 0017_counts_at_verdict
Create Date: 2026-12-03

From now on the judge adds a row per (local month, region of the station, vehicle) of each
valid first verdict (remote_sensing.tested), and the distinct-vehicle figures of whole
months read these rows instead of the month's events. This fills them for what is stored:
the judged events and, for the months retention dropped events of, its tested vehicles
(both as their regions are now). Months are local in LANTIAN_TIMEZONE as set when this
runs. The selection is frozen here as SQL: it must keep meaning what it meant when this
revision was written.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from core.settings import Settings

revision = "0018_tested_months"
down_revision = "0017_counts_at_verdict"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TESTED = (
    "SELECT {at}, s.region, e.vehicle_id FROM rs_events e JOIN stations s ON s.id = e.station_id "
    "WHERE e.status = 'processed' AND e.valid AND e.vehicle_id IS NOT NULL "
    "UNION SELECT {hour}, s.region, t.vehicle_id FROM rs_tested_vehicles t JOIN stations s ON s.id = t.station_id"
)


def upgrade() -> None:
    op.create_table(
        "rs_tested_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name="fk_rs_tested_months_vehicle_id_vehicles"),
        sa.PrimaryKeyConstraint("month", "region", "vehicle_id", name="pk_rs_tested_months"),
    )
    tz = Settings().timezone
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        local = "date_trunc('month', ({c} AT TIME ZONE 'UTC') AT TIME ZONE :tz)::date"
        op.execute(sa.text(
            f"INSERT INTO rs_tested_months (month, region, vehicle_id) SELECT DISTINCT * FROM ("
            f"{_TESTED.format(at=local.format(c='e.measured_at'), hour=local.format(c='t.hour'))}) tested"
        ).bindparams(tz=tz))
        return
    # SQLite has no time zones: the months are computed here (an embedded database is small).
    zone, utc = ZoneInfo(tz), ZoneInfo("UTC")
    tested = set()
    for at, region, vehicle_id in bind.execute(sa.text(_TESTED.format(at="e.measured_at", hour="t.hour"))):
        local = datetime.fromisoformat(str(at)).replace(tzinfo=utc).astimezone(zone)
        tested.add((f"{local.year:04d}-{local.month:02d}-01", region, vehicle_id))
    if tested:
        bind.execute(sa.text("INSERT INTO rs_tested_months (month, region, vehicle_id) VALUES (:m, :r, :v)"),
                     [{"m": m, "r": r, "v": v} for m, r, v in sorted(tested)])


def downgrade() -> None:
    op.drop_table("rs_tested_months")
