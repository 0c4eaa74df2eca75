"""The append-only audit trail: each record carries the hash of the one before it.

Editing or deleting any record breaks the chain at that point, which `verify_chain`
(and `lantian audit verify`) reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, event, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.db import Base, BigId, Json, UTCDateTime, is_postgres, utcnow

GENESIS = "0" * 64
# Any constant works: it names the one advisory lock that serialises appends.
_CHAIN_LOCK = 7_046_211


class AuditRecord(Base):
    __tablename__ = "audit_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def _digest(record: AuditRecord) -> str:
    body = {
        "at": record.at.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "subject_type": record.subject_type,
        "subject_id": record.subject_id,
        "reason": record.reason,
        "data": record.data,
        "prev_hash": record.prev_hash,
    }
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


_STAGED = "lantian_audit"


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Record an act in the caller's transaction; it is chained when that transaction commits.

    Chaining needs the head of the chain, so appends are serialised: staging them until
    commit holds that lock for the commit alone, not for a whole batch of judgements.
    """
    session.info.setdefault(_STAGED, []).append({
        "at": utcnow().replace(microsecond=0),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "reason": reason,
        "data": json.loads(json.dumps(data or {}, default=str)),
    })


def write_staged(session: Session) -> None:
    """Chain and write the staged records now (commit does this; tests that never commit call it)."""
    staged = session.info.pop(_STAGED, None)
    if not staged:
        return
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = session.scalar(select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)) or GENESIS
    for item in staged:
        record = AuditRecord(**item, prev_hash=prev)
        record.hash = prev = _digest(record)
        session.add(record)
    session.flush()


def install(factory: sessionmaker[Session]) -> None:
    """Chain each session's staged records just before it commits; drop them on rollback."""
    event.listen(factory, "before_commit", write_staged)
    event.listen(factory, "after_rollback", lambda session: session.info.pop(_STAGED, None))


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(records: Iterable[AuditRecord]) -> ChainReport:
    """Walk the chain in id order; the first record whose links or content do not hold is reported."""
    prev_hash = GENESIS
    checked = 0
    for record in records:
        if record.prev_hash != prev_hash:
            return ChainReport(checked, record.id, "previous record missing or altered")
        if _digest(record) != record.hash:
            return ChainReport(checked, record.id, "record content altered")
        prev_hash = record.hash
        checked += 1
    return ChainReport(checked, None, None)


def verify(session: Session) -> ChainReport:
    rows = session.scalars(select(AuditRecord).order_by(AuditRecord.id).execution_options(yield_per=1000))
    return verify_chain(rows)
