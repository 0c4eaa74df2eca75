"""What stations send, stored as received (immutable) beside the verdict computed from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, text
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
