"""People, organisations and stations, and how each proves who it is."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, bindparam, delete, exists, select
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
    # Bumped by every deactivation and role, region or password change: older tokens die.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SigninFailure(Base):
    """A failed sign-in, kept for the throttling window (core.settings `signin_*`)."""

    __tablename__ = "signin_failures"
    __table_args__ = (Index("ix_signin_failures_username_at", "username", "at"),
                      Index("ix_signin_failures_address_at", "address", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


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
    # HMAC verification needs the shared secret itself, so it is stored sealed (encrypted,
    # core.keys.SecretBox) rather than hashed; it never leaves the server again.
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StationSuspension(Base):
    """An interval in which a station was suspended: what it measured then is never enforced,
    however late it is uploaded. `until_at` is null while the suspension lasts."""

    __tablename__ = "station_suspensions"
    __table_args__ = (Index("ix_station_suspensions_station", "station_id", "from_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    from_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class StationKey:
    """Credentials a request was accepted on without reading the station: its write must be
    made on the condition KEY_STILL_VALID, bound to them."""

    key_id: str
    sealed: str  # the secret as stored (sealed): compared in SQL, never the plaintext


# The station still has that key and secret and is not suspended, when the write happens.
KEY_STILL_VALID = exists().where(
    Station.key_id == bindparam("key_id"), Station.secret == bindparam("sealed"), Station.suspended.is_(False)
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


# --- sign-in throttling ------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    max_failures_per_address: int
    window_s: int


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


def _locked_for(session: Session, column: Any, value: str, limit: int, since: datetime, now: datetime,
                window_s: int) -> int:
    """Seconds until fewer than `limit` failures of `value` lie in the window (0: not locked)."""
    recent = select(SigninFailure.at).where(column == value, SigninFailure.at > since)
    times = session.scalars(recent.order_by(SigninFailure.at.desc()).limit(limit)).all()
    if len(times) < limit:
        return 0
    return max(1, math.ceil((times[-1] + timedelta(seconds=window_s) - now).total_seconds()))


def sign_in(session: Session, username: str, password: str, address: str, throttle: Throttle,
            now: datetime) -> User | None:
    """`authenticate`, refused with TooManyAttempts (before any password is checked) while the
    username or the address has too many recent failures; a failure is recorded (committed)."""
    since = now - timedelta(seconds=throttle.window_s)
    session.execute(delete(SigninFailure).where(SigninFailure.at <= since))
    wait = max(_locked_for(session, SigninFailure.username, username, throttle.max_failures, since, now,
                           throttle.window_s),
               _locked_for(session, SigninFailure.address, address, throttle.max_failures_per_address, since,
                           now, throttle.window_s))
    if wait:
        session.commit()
        raise TooManyAttempts(wait)
    user = authenticate(session, username, password)
    if user is None:
        session.add(SigninFailure(username=username[:64], address=address[:64], at=now))
    session.commit()
    return user


# --- bearer tokens -----------------------------------------------------------------------


def issue_token(user: User, secret_key: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "usr": user.username,
        "role": user.role,
        "region": user.region,
        "org": user.org_id,
        "ver": user.token_version,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret_key, algorithm="HS256")


def decode_token(token: str, secret_key: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(token, secret_key, algorithms=["HS256"], options={"require": ["exp", "sub", "ver"]})
    except jwt.PyJWTError:
        return None
    sub = str(claims["sub"])
    return claims if type(claims["ver"]) is int and sub.isascii() and sub.isdigit() and len(sub) < 19 else None


# The account as it stands now: a token is good only while its version is the current one.
_USERS = User.__table__.c
PERSON_NOW = select(_USERS.username, _USERS.role, _USERS.region, _USERS.org_id, _USERS.token_version).where(
    _USERS.id == bindparam("user_id"), _USERS.active.is_(True))


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


# A unix time in milliseconds is above this for any date after 1973; in seconds, until 5138.
_MILLISECONDS_FROM = 10**11


def timestamp_problem(timestamp: str, now: int, window_s: int) -> str | None:
    """Why `timestamp` (X-Timestamp) is refused at `now`, or None when it is unix seconds within
    `window_s` of it either way (both bounds inclusive); worded for a firmware engineer."""
    server = f"server time {now} ({datetime.fromtimestamp(now, UTC).isoformat().replace('+00:00', 'Z')})"
    if not (timestamp.isascii() and timestamp.lstrip("-").isdigit() and len(timestamp) <= 20):
        return f"X-Timestamp must be unix seconds, an integer; {server}"
    ts = int(timestamp)
    if ts >= _MILLISECONDS_FROM:
        return f"X-Timestamp {ts} looks like milliseconds: it must be unix seconds; {server}"
    if abs(now - ts) > window_s:
        return (f"X-Timestamp {ts} is {abs(now - ts)} s from the server clock (at most {window_s} s either way); "
                f"{server}")
    return None


def station_calibrated(station: Station, on: date) -> bool:
    """Whether the local day `on` lies in the calibration window [calibrated_from, calibrated_until]."""
    return (station.calibrated_from is None or station.calibrated_from <= on) and on <= station.calibrated_until


Interval = tuple[datetime, datetime | None]


def suspended_at(intervals: Iterable[Interval], at: datetime) -> bool:
    """Whether `at` falls in one of the suspension intervals [from_at, until_at) (open: still suspended)."""
    return any(start <= at and (until is None or at < until) for start, until in intervals)


def suspensions_of(session: Session, station_ids: Iterable[int]) -> dict[int, list[Interval]]:
    """The suspension intervals of these stations, by station."""
    found: dict[int, list[Interval]] = {}
    ids = sorted(set(station_ids))
    if ids:
        rows = session.execute(select(StationSuspension.station_id, StationSuspension.from_at,
                                      StationSuspension.until_at).where(StationSuspension.station_id.in_(ids)))
        for station_id, start, until in rows:
            found.setdefault(station_id, []).append((start, until))
    return found


def set_suspended(session: Session, station: Station, suspended: bool, at: datetime) -> bool:
    """Open (suspend) or close (resume) the station's suspension interval; False when it was
    already so. The `suspended` flag refuses its uploads while the interval is open."""
    current = session.scalar(select(StationSuspension).where(
        StationSuspension.station_id == station.id, StationSuspension.until_at.is_(None)))
    if suspended == (current is not None) and station.suspended == suspended:
        return False
    station.suspended = suspended
    if suspended and current is None:
        session.add(StationSuspension(station_id=station.id, from_at=at))
    elif not suspended and current is not None:
        current.until_at = at
    return True
