"""Consequences: violations, the I/M case of each vehicle, strikes and listings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, BigId, Json, UTCDateTime, utcnow

# The wire enumerations (API.md sections 6 and 9) are the stored ones.
from schemas.cases import ACTIVE as ACTIVE
from schemas.cases import CASE_STATUSES as CASE_STATUSES
from schemas.cases import SOURCES as SOURCES
from schemas.cases import WITHDRAWN as WITHDRAWN


class SupervisoryTest(Base):
    """A road or depot check by officers; a failed one is a violation."""

    __tablename__ = "supervisory_tests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    results: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    passed: Mapped[bool] = mapped_column(Boolean)
    location: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(6))
    recorded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Violation(Base):
    __tablename__ = "violations"
    __table_args__ = (
        # One violation per source record, whatever the retries.
        UniqueConstraint("source", "source_ref"),
        Index("ix_violations_vehicle_time", "vehicle_id", "detected_at"),
        Index("ix_violations_time", "detected_at", "id"),
        Index("ix_violations_region_time", "region", "detected_at", "id"),
        Index("ix_violations_vehicle_region_time", "vehicle_region", "detected_at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_on: Mapped[date] = mapped_column(Date)  # local calendar day of detection
    region: Mapped[str | None] = mapped_column(String(6))  # where it was detected
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The vehicle as it stood at detection (DOMAIN.md section 7): later registry changes
    # never move a past violation to another fleet, use nature or region.
    vehicle_region: Mapped[str | None] = mapped_column(String(6))
    fleet_id: Mapped[int | None] = mapped_column(ForeignKey("fleets.id"))
    use_nature: Mapped[str | None] = mapped_column(String(16))
    # Append-only in meaning: a violation the history no longer supports is withdrawn, never deleted.
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(32))
    withdrawn_by_event: Mapped[int | None] = mapped_column(BigId)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its evidence as the API writes it, kept when it is judged (enforcement.evidence.keep):
    # a page of cases embeds it instead of assembling and encoding some 300 events. Null
    # (violations from before migration 0012): assembled when read. Deferred, so what loads
    # violations for the rules never reads it.
    evidence_json: Mapped[str | None] = mapped_column(Text, deferred=True)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # At most one open case per vehicle, enforced by the database itself.
        Index(
            "uq_cases_one_open", "vehicle_id", unique=True,
            postgresql_where=text("status <> 'closed'"), sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_cases_opened", "opened_at", "id"),
        Index("ix_cases_status_deadline", "status", "deadline_on"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    region: Mapped[str | None] = mapped_column(String(6), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_on: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    penalty_settled: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_reason: Mapped[str | None] = mapped_column(String(16))  # retest_passed | withdrawn
    retest_passed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # [{"reason", "violation_id"}]: what a person must look at again (a penalty on a withdrawn violation).
    review_required: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list, server_default="[]")


class Notice(Base):
    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    issued_on: Mapped[date] = mapped_column(Date)
    deadline_days: Mapped[int] = mapped_column(Integer)
    deadline_on: Mapped[date] = mapped_column(Date)
    issued_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Penalty(Base):
    __tablename__ = "penalties"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    waived: Mapped[bool] = mapped_column(Boolean, default=False)
    decision_no: Mapped[str | None] = mapped_column(String(64))
    amount_yuan: Mapped[int | None] = mapped_column(Integer)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    violation_ids: Mapped[list[int] | None] = mapped_column(Json)  # the violations it covers


class Repair(Base):
    __tablename__ = "repairs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    items: Mapped[list[str]] = mapped_column(Json, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Retest(Base):
    __tablename__ = "retests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(32))
    results: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    passed: Mapped[bool] = mapped_column(Boolean)
    reported_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Strike(Base):
    """At most one strike per vehicle per local calendar day of detection."""

    __tablename__ = "strikes"
    __table_args__ = (UniqueConstraint("vehicle_id", "day"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    day: Mapped[date] = mapped_column(Date)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"))


class Listing(Base):
    """A blacklist or key-supervision entry; `active_key` makes one active entry per subject/rule/period."""

    __tablename__ = "listings"
    __table_args__ = (
        Index(
            "uq_listings_active", "list_kind", "subject_type", "subject_id", "rule", "period_start", unique=True,
            postgresql_where=text("active"), sqlite_where=text("active"),
        ),
        Index("ix_listings_listed", "listed_at", "id"),
        Index("ix_listings_subject", "subject_type", "subject_id", "listed_at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_kind: Mapped[str] = mapped_column(String(16))  # blacklist | key_supervision
    subject_type: Mapped[str] = mapped_column(String(16))  # vehicle | fleet
    subject_id: Mapped[int] = mapped_column(BigId)
    rule: Mapped[str] = mapped_column(String(32))
    # How the period was drawn: "cycle" (inspection cycle), "rolling" (the trailing window
    # of a vehicle with no cycle on record) or "year" (fleets); rolling entries are revised
    # together when a late strike moves their windows.
    basis: Mapped[str] = mapped_column(String(8), default="cycle", server_default="cycle")
    region: Mapped[str | None] = mapped_column(String(6), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    evidence: Mapped[list[int]] = mapped_column(Json, default=list)
    ratio: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    delisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delisted_by: Mapped[str | None] = mapped_column(String(100))
    delist_reason: Mapped[str | None] = mapped_column(Text)
    # Its evidence no longer meets its rule (a violation withdrawn): a person decides, never silently.
    review_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class ViolationCorrection(Base):
    """A person moved a violation to the vehicle they read: the violation's vehicle changes,
    this record keeps which vehicle it was on before, who moved it and why."""

    __tablename__ = "violation_corrections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), index=True)
    from_vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    to_vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SuspectedClone(Base):
    """Smoke confirmed by a person on a plate registered to an electric vehicle: a misread or a
    cloned plate (套牌), listed for the police instead of becoming that vehicle's violation."""

    __tablename__ = "suspected_clones"
    __table_args__ = (Index("ix_suspected_clones_region", "region", "reported_at", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("bs_snapshot_keys.id"), unique=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"))
    region: Mapped[str] = mapped_column(String(6))  # where the smoke was seen
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ringelmann: Mapped[int] = mapped_column(Integer)  # the level the person saw
    note: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
