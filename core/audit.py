"""The append-only audit trail: each record carries the hash of the one before it.

Editing or deleting any record breaks the chain at that point, which `verify_chain`
(and `lantian audit verify`) reports. The chain alone cannot show that its newest records
were deleted, or that someone with database access rewrote it whole: a checkpoint (the head
of the chain, signed with the secret key, kept outside the database) can. `verify` then
also fails when the chain no longer extends a checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import String, Text, event, func, select, text
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


# --- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain at a moment: its newest record's id and hash, and how many records
    lead up to it (id 0 and the genesis hash for an empty chain)."""

    id: int
    hash: str
    count: int
    at: str

    def _payload(self) -> bytes:
        return f"lantian-audit-checkpoint\n{self.id}\n{self.hash}\n{self.count}\n{self.at}".encode()

    def signed_line(self, secret_key: str) -> str:
        sig = hmac.new(secret_key.encode(), self._payload(), hashlib.sha256).hexdigest()
        return json.dumps({"id": self.id, "hash": self.hash, "count": self.count, "at": self.at, "sig": sig},
                          separators=(",", ":"))


class BadCheckpoint(ValueError):
    pass


def head(session: Session) -> Checkpoint:
    last = session.execute(select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)).first()
    count = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
    at = utcnow().replace(microsecond=0).isoformat()
    return Checkpoint(last.id, last.hash, count, at) if last else Checkpoint(0, GENESIS, 0, at)


def parse_checkpoint(line: str, secret_key: str) -> Checkpoint:
    """The checkpoint a signed line holds; BadCheckpoint when it is not one or its signature fails."""
    try:
        raw = json.loads(line)
        checkpoint = Checkpoint(int(raw["id"]), str(raw["hash"]), int(raw["count"]), str(raw["at"]))
        sig = str(raw["sig"])
    except (ValueError, TypeError, KeyError):
        raise BadCheckpoint("not a checkpoint line") from None
    if not hmac.compare_digest(sig, json.loads(checkpoint.signed_line(secret_key))["sig"]):
        raise BadCheckpoint("signature does not match (made with another secret key, or edited)")
    return checkpoint


def extends(session: Session, checkpoint: Checkpoint) -> str | None:
    """Why the chain as stored no longer extends `checkpoint`, or None when it does."""
    if checkpoint.id == 0:
        return None
    stored = session.scalar(select(AuditRecord.hash).where(AuditRecord.id == checkpoint.id))
    if stored is None:
        return f"record {checkpoint.id}, the head at this checkpoint, is missing (newest records deleted?)"
    if stored != checkpoint.hash:
        return f"record {checkpoint.id} has another hash than at this checkpoint (the chain was rewritten)"
    count = session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.id <= checkpoint.id))
    if count != checkpoint.count:
        return f"{count} records lead up to record {checkpoint.id}, {checkpoint.count} did at this checkpoint"
    return None


def append_checkpoint(session: Session, directory: str, secret_key: str) -> Checkpoint:
    """Append the signed head of the chain to this month's file in `directory`."""
    checkpoint = head(session)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"audit-checkpoints-{checkpoint.at[:7]}.jsonl", "a", encoding="utf-8") as out:
        out.write(checkpoint.signed_line(secret_key) + "\n")
    return checkpoint


def checkpoint_lines(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(`file:line`, line) of every checkpoint in `paths` (files, or folders of *.jsonl files)."""
    for given in paths:
        path = Path(given)
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for file in files:
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    yield f"{file}:{number}", line
