"""What stations send, stored as received (immutable) beside the verdict computed from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

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


class Event(Base):
    __tablename__ = "rs_events"
    __table_args__ = (
        UniqueConstraint("station_id", "event_id"),
        # The outbox: events waiting for a verdict, oldest first.
        Index(
            "ix_rs_events_pending", "id",
            postgresql_where=text("status = 'received'"), sqlite_where=text("status = 'received'"),
        ),
        Index("ix_rs_events_vehicle_time", "vehicle_id", "measured_at"),
        Index("ix_rs_events_station_time", "station_id", "measured_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    body_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)

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
    # Judgement-rule state of this vehicle after this measurement, and what it decided.
    runs: Mapped[dict[str, Any] | None] = mapped_column(Json)
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


class Snapshot(Base):
    """A black-smoke camera snapshot: metadata and image references as received, the
    OpenCV estimate once analysed, and the review decision once a person made it."""

    __tablename__ = "bs_snapshots"
    __table_args__ = (
        UniqueConstraint("station_id", "event_id"),
        # The outbox of the analysis jobs, like rs_events (a snapshot may be reviewed
        # before its analysis ran; it still gets its estimate).
        Index(
            "ix_bs_snapshots_unanalysed", "id",
            postgresql_where=text("analysed_at IS NULL"), sqlite_where=text("analysed_at IS NULL"),
        ),
        # The review queue: per status, highest estimate first, then newest.
        Index("ix_bs_snapshots_queue", "status", "estimated_level", "id"),
        Index("ix_bs_snapshots_region", "region", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    event_id: Mapped[str] = mapped_column(String(100))
    body_hash: Mapped[str] = mapped_column(String(64))  # metadata meaning + image hashes
    payload: Mapped[dict[str, Any]] = mapped_column(Json)  # the metadata as sent
    # [{"sha256", "format", "width", "height", "size_bytes"}] in upload order (n from 0).
    images: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    region: Mapped[str] = mapped_column(String(6))  # the station's, for scoping people
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
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
    """Judgement-rule state after each vehicle's latest judged measurement.

    A copy of that event's `runs`, kept per vehicle so a batch reads every vehicle's state
    in one primary-key lookup; an event measured earlier than `measured_at` (a late upload)
    takes the slow path through the event history instead.
    """

    __tablename__ = "rs_vehicle_runs"
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    runs: Mapped[dict[str, Any]] = mapped_column(Json)
