"""People, organisations and stations, and how each proves who it is."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Date, Float, ForeignKey, String, bindparam, exists, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, BigId, UTCDateTime, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    ENV_OFFICER = "env_officer"
    POLICE = "police"
    TRANSPORT = "transport"
    REPAIR_STATION = "repair_station"
    INSPECTION_STATION = "inspection_station"


ORG_KINDS = ("repair_station", "inspection_station")
STATION_KINDS = ("remote_sensing", "black_smoke")


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(6))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Station(Base):
    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(6))
    calibrated_until: Mapped[date] = mapped_column(Date)
    # Start of the calibration window (DOMAIN.md section 7); measurements before it are invalid.
    calibrated_from: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str | None] = mapped_column(String(200))  # where it stands, as an officer names it
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC verification needs the shared secret itself; it never leaves the server again.
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class StationKey:
    """Credentials a request was accepted on without reading the station: its write must be
    made on the condition KEY_STILL_VALID, bound to them."""

    key_id: str
    secret: str


# The station still has that key and secret and is not suspended, when the write happens.
KEY_STILL_VALID = exists().where(
    Station.key_id == bindparam("key_id"), Station.secret == bindparam("secret"), Station.suspended.is_(False)
)


# --- passwords ---------------------------------------------------------------------------

_hasher = PasswordHasher()  # argon2id: memory-hard


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a fixed hash when the user is unknown keeps timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


# --- bearer tokens -----------------------------------------------------------------------


def issue_token(user: User, secret_key: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "usr": user.username,
        "role": user.role,
        "region": user.region,
        "org": user.org_id,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret_key, algorithm="HS256")


def decode_token(token: str, secret_key: str) -> dict[str, Any] | None:
    try:
        return jwt.decode(token, secret_key, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]})
    except jwt.PyJWTError:
        return None


# --- station signatures ------------------------------------------------------------------


def new_station_credentials() -> tuple[str, str]:
    return "k_" + secrets.token_hex(8), secrets.token_urlsafe(32)


def signing_string(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), path, timestamp, hashlib.sha256(body).hexdigest()]).encode()


def sign(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_string(method, path, timestamp, body), hashlib.sha256).hexdigest()


def signature_headers(key_id: str, secret: str, method: str, path: str, body: bytes, timestamp: str) -> dict[str, str]:
    """The three headers a station sends with a request (API.md section 2)."""
    return {"X-Station-Key": key_id, "X-Timestamp": timestamp,
            "X-Signature": sign(secret, method, path, timestamp, body)}


def signature_matches(secret: str, signature: str, method: str, path: str, timestamp: str, body: bytes) -> bool:
    expected = sign(secret, method, path, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def timestamp_fresh(timestamp: str, now: float, window_s: int) -> bool:
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    return abs(now - ts) <= window_s


def station_calibrated(station: Station, on: date) -> bool:
    return not station.suspended and on <= station.calibrated_until
