"""jurisdiction: a violation's region is where it was detected

Revision ID: 0011_jurisdiction
Revises: 0010_registry
Create Date: 2026-12-02

Until now `violations.region` repeated the vehicle's region. It becomes the place of
detection (DOMAIN.md section 7, "Jurisdiction"): the station of the event that grounded a
remote-sensing violation, the snapshot's station for black smoke, the test's region for a
road or depot check (kept as it was when the source record has no region). The vehicle's
region at detection stays in `vehicle_region`, and gets the index that the region-scoped
lists walk alongside `ix_violations_region_time`. Downgrading puts the vehicle's region back.
Two partial indexes of rs_events let /stats/supervision count a month from the index alone
(building them reads rs_events once).
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_jurisdiction"
down_revision = "0010_registry"
branch_labels = None
depends_on = None

_PROCESSED = "status = 'processed'"
_TESTED = "status = 'processed' AND valid IS TRUE AND vehicle_id IS NOT NULL"
# Each source's record, keyed by the violation's source_ref (the record's id as text).
_PLACE = {
    "remote_sensing": "SELECT s.region FROM rs_events e JOIN stations s ON s.id = e.station_id "
                      "WHERE e.id = CAST(violations.source_ref AS BIGINT)",
    "black_smoke": "SELECT b.region FROM bs_snapshots b WHERE b.id = CAST(violations.source_ref AS BIGINT)",
    "road_check": "SELECT t.region FROM supervisory_tests t WHERE t.id = CAST(violations.source_ref AS BIGINT)",
    "depot_check": "SELECT t.region FROM supervisory_tests t WHERE t.id = CAST(violations.source_ref AS BIGINT)",
}


def upgrade() -> None:
    for source, place in _PLACE.items():
        op.execute(sa.text(f"UPDATE violations SET region = COALESCE(({place}), region) WHERE source = :source")
                   .bindparams(source=source))
    op.create_index("ix_violations_vehicle_region_time", "violations", ["vehicle_region", "detected_at", "id"])
    # /stats/supervision reads a month of events from these alone (docs/benchmarks.md).
    op.create_index("ix_rs_events_tested", "rs_events", ["measured_at", "vehicle_id", "station_id"],
                    postgresql_where=sa.text(_TESTED), sqlite_where=sa.text(_TESTED))
    op.create_index("ix_rs_events_measured", "rs_events", ["measured_at", "station_id", "valid", "verdict"],
                    postgresql_where=sa.text(_PROCESSED), sqlite_where=sa.text(_PROCESSED))


def downgrade() -> None:
    op.drop_index("ix_rs_events_measured", table_name="rs_events")
    op.drop_index("ix_rs_events_tested", table_name="rs_events")
    op.drop_index("ix_violations_vehicle_region_time", table_name="violations")
    op.execute("UPDATE violations SET region = vehicle_region WHERE vehicle_region IS NOT NULL")
