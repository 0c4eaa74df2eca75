"""What stations send, stored as received (immutable) beside the verdict computed from it."""

from __future__ import annotations

import zlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core import plates
from core.db import Base, BigId, Json, UTCDateTime, utcnow

RECEIVED = "received"
PROCESSED = "processed"


class PolicyRecord(Base):
    """Content-addressed copy of each policy ever used, so any verdict can be explained."""

    __tablename__ = "policies"
    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


_TESTED = "status = 'processed' AND valid IS TRUE AND vehicle_id IS NOT NULL"

# Judges claim waiting events by shard of the plate as read, each shard held by one judge at
# a time (remote_sensing.processing.claim_pending): two judges then rarely judge the same
# vehicle at once, so they seldom wait on each other's vehicle locks.
JUDGE_SHARDS = 16


def claim_shard(body: Any) -> int:
    """The shard of an event's plate as read (0 when it has none): reads of one plate, and
    OCR-confusable reads of it (the judge's fuzzy match), share a shard."""
    plate = body.get("plate") if isinstance(body, dict) else None
    number = plate.get("number") if isinstance(plate, dict) else None
    if not isinstance(number, str):
        return 0
    key = plates.confusion_key(plates.clean_plate(number))
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % JUDGE_SHARDS


class EventKey(Base):
    """Each stored event's idempotency key (`event_id` per station) and the source of its id.

    Apart from rs_events because PostgreSQL keeps a partitioned table's unique indexes per
    partition (a key must hold `measured_at`): a replay with a changed `measured_at` would
    land in another partition unseen. Ingest inserts the key and the event in one
    statement; the event's `id` is its key's."""

    __tablename__ = "rs_event_keys"
    __table_args__ = (UniqueConstraint("station_id", "event_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """An event as received and its first verdict. On PostgreSQL partitioned by month of
    `measured_at` (core.partitions); its primary key there is (`id`, `measured_at`)."""

    __tablename__ = "rs_events"
    __table_args__ = (
        # The outbox: events waiting for a verdict, oldest first.
        Index(
            "ix_rs_events_pending", "id",
            postgresql_where=text("status = 'received'"), sqlite_where=text("status = 'received'"),
        ),
        # ...and by claim shard: a judge's claim reads its shard's oldest, whatever the backlog.
        Index(
            "ix_rs_events_pending_shard", "claim_shard", "id",
            postgresql_where=text("status = 'received'"), sqlite_where=text("status = 'received'"),
        ),
        Index("ix_rs_events_vehicle_time", "vehicle_id", "measured_at"),
        Index("ix_rs_events_station_time", "station_id", "measured_at"),
        # The supervision figures (enforcement.stats) read a month of events from these alone:
        # the vehicles validly measured (quotas, diesel coverage), and the counts by station,
        # validity and verdict.
        Index(
            "ix_rs_events_tested", "measured_at", "vehicle_id", "station_id",
            postgresql_where=text(_TESTED), sqlite_where=text(_TESTED),
        ),
        Index(
            "ix_rs_events_measured", "measured_at", "station_id", "valid", "verdict",
            postgresql_where=text("status = 'processed'"), sqlite_where=text("status = 'processed'"),
        ),
        {"postgresql_partition_by": "RANGE (measured_at)"},
    )
    __mapper_args__ = {"primary_key": ["id"]}
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # its EventKey's
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    body_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)
    claim_shard: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")

    # The verdict, written once by the judge.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid: Mapped[bool | None] = mapped_column(Boolean)
    reasons: Mapped[list[str] | None] = mapped_column(Json)
    verdict: Mapped[str | None] = mapped_column(String(16))
    exceeded: Mapped[list[str] | None] = mapped_column(Json)
    fuel_type: Mapped[str | None] = mapped_column(String(16))
    plate_read: Mapped[str | None] = mapped_column(String(16))
    plate_match: Mapped[str | None] = mapped_column(String(8))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"))
    # Judgement-rule state of this vehicle after this measurement: a projection the judge
    # rewrites when a late upload replays the history (it is not a verdict). Set only on
    # the vehicle's valid, judgeable measurements: they make up its timeline.
    runs: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # The first verdict's decision; later ones are VerdictRevision rows.
    judged: Mapped[list[str] | None] = mapped_column(Json)
    warnings: Mapped[list[str] | None] = mapped_column(Json)
    limits: Mapped[dict[str, float] | None] = mapped_column(Json)
    policy_digest: Mapped[str | None] = mapped_column(ForeignKey("policies.digest"))
    violation_id: Mapped[int | None] = mapped_column(BigId)


# Black-smoke snapshot statuses: analysed, then decided by a person.
PENDING_REVIEW = "pending_review"
CONFIRMED = "confirmed"
REJECTED = "rejected"
REVIEWED = (CONFIRMED, REJECTED)


class SnapshotKey(Base):
    """Each stored snapshot's idempotency key and the source of its id: like EventKey, apart
    from bs_snapshots because that table is partitioned by month on PostgreSQL."""

    __tablename__ = "bs_snapshot_keys"
    __table_args__ = (UniqueConstraint("station_id", "event_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Snapshot(Base):
    """A black-smoke camera snapshot: metadata and image references as received, the
    OpenCV estimate once analysed, and the review decision once a person made it. On
    PostgreSQL partitioned by month of `captured_at`; its primary key there is
    (`id`, `captured_at`)."""

    __tablename__ = "bs_snapshots"
    __table_args__ = (
        # The outbox of the analysis jobs, like rs_events (a snapshot may be reviewed
        # before its analysis ran; it still gets its estimate).
        Index(
            "ix_bs_snapshots_unanalysed", "id",
            postgresql_where=text("analysed_at IS NULL"), sqlite_where=text("analysed_at IS NULL"),
        ),
        # The review queue: per status, highest estimate first, then newest.
        Index("ix_bs_snapshots_queue", "status", "estimated_level", "id"),
        Index("ix_bs_snapshots_region", "region", "id"),
        {"postgresql_partition_by": "RANGE (captured_at)"},
    )
    __mapper_args__ = {"primary_key": ["id"]}
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # its SnapshotKey's
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    body_hash: Mapped[str] = mapped_column(String(64))  # metadata meaning + image hashes
    payload: Mapped[dict[str, Any]] = mapped_column(Json)  # the metadata as sent
    # [{"sha256", "format", "width", "height", "size_bytes"}] in upload order (n from 0).
    images: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    region: Mapped[str] = mapped_column(String(6))  # the station's, for scoping people
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    camera_ringelmann: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)

    # The estimate, written once by the analysis job.
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    estimated_level: Mapped[int | None] = mapped_column(Integer)
    estimate: Mapped[dict[str, Any] | None] = mapped_column(Json)

    # The review, written once by a person.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_level: Mapped[int | None] = mapped_column(Integer)
    review_note: Mapped[str | None] = mapped_column(Text)
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"))
    violation_id: Mapped[int | None] = mapped_column(BigId)


class VehicleRuns(Base):
    """Judgement-rule state after the latest item of each vehicle's timeline (a projection).

    A copy of that event's `runs` (or `{}` after a run reset, with `event_id` 0), kept per
    vehicle so a batch reads every vehicle's state in one primary-key lookup; an item
    earlier than (`measured_at`, `event_id`) (a late upload) replays the history instead.
    """

    __tablename__ = "rs_vehicle_runs"
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    runs: Mapped[dict[str, Any]] = mapped_column(Json)


class VerdictRevision(Base):
    """A re-judgement of a stored event (append-only): the first verdict stays on the event.

    Written when a late measurement or a run reset changes what the rule decides at this
    event; `cause_event` (or `cause_reset`) names what changed it, `policy_digest` the
    policy the replay applied, `violation_ids` the violations the event grounds now and
    `withdrawn` those this revision withdrew.
    """

    __tablename__ = "rs_verdict_revisions"
    __table_args__ = (UniqueConstraint("event_id", "rev"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("rs_event_keys.id"))
    rev: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cause_event: Mapped[int | None] = mapped_column(BigId)
    cause_reset: Mapped[int | None] = mapped_column(BigId)
    judged: Mapped[list[str]] = mapped_column(Json)
    warnings: Mapped[list[str]] = mapped_column(Json)
    violation_ids: Mapped[list[int]] = mapped_column(Json)
    withdrawn: Mapped[list[int]] = mapped_column(Json)
    policy_digest: Mapped[str] = mapped_column(ForeignKey("policies.digest"))


class RunReset(Base):
    """A verified repair: a passing retest that closed a case ends every run of the vehicle
    at the retest's `tested_at`. Part of the vehicle's timeline; recorded by the case loop,
    then (as `received`) waiting for the judge, which re-judges the vehicle's later events."""

    __tablename__ = "rs_run_resets"
    __table_args__ = (
        Index("ix_rs_run_resets_vehicle_time", "vehicle_id", "at"),
        Index(
            "ix_rs_run_resets_pending", "id",
            postgresql_where=text("status = 'received'"), sqlite_where=text("status = 'received'"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(32))  # retest_passed
    case_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventCount(Base):
    """Judged events of one UTC hour and station counted by what the statistics group them
    by (remote_sensing.counts, kept at the verdict): a month's figures (enforcement.stats)
    read these, in any whole-hour time zone, and outlive the events retention drops."""

    __tablename__ = "rs_event_counts"
    __table_args__ = (
        Index("ix_rs_event_counts_hour", "hour", "station_id"),
        Index("ix_rs_event_counts_unmerged", "hour", "station_id",
              postgresql_where=text("NOT merged"), sqlite_where=text("NOT merged")),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    valid: Mapped[bool | None] = mapped_column(Boolean)
    verdict: Mapped[str | None] = mapped_column(String(16))
    fuel_type: Mapped[str | None] = mapped_column(String(16))
    exceeded: Mapped[list[str] | None] = mapped_column(Json)
    reasons: Mapped[list[str] | None] = mapped_column(Json)
    n: Mapped[int] = mapped_column(Integer)
    # Added by a judge's batch (False) or merged into one row per kind by the sweep (True).
    merged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class TestedVehicle(Base):
    """Vehicles validly measured, by UTC hour and station, of the events retention dropped:
    the distinct-vehicle quotas and the diesel coverage count them."""

    __tablename__ = "rs_tested_vehicles"
    __table_args__ = (Index("ix_rs_tested_vehicles_hour", "hour", "station_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))


class TestedMonth(Base):
    """A vehicle validly measured in a local month, in the region of the station
    (remote_sensing.tested, kept at the verdict): the distinct-vehicle figures of whole
    months count these."""

    __tablename__ = "rs_tested_months"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), primary_key=True)


class RetainedMonth(Base):
    """A UTC month of rs_events whose passing and invalid events retention dropped, once its
    tested vehicles were counted into rs_tested_vehicles: before the end of the latest such
    month the distinct-vehicle figures read those, after it the events. `events_counted` is
    the month's judged events at the time (rs_event_counts holds them since their verdicts)."""

    __tablename__ = "rs_retained_months"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    events_counted: Mapped[int] = mapped_column(Integer)
    events_kept: Mapped[int] = mapped_column(Integer)
