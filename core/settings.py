"""Every setting and every policy number, read from the environment (prefix ``LANTIAN_``).

Policy numbers live in :class:`Policy` (prefix ``LANTIAN_POLICY_``) so a city changes its
rules without a release; each stored verdict keeps the policy that produced it.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Limits = dict[str, dict[str, float]]

DEFAULT_LIMITS: Limits = {
    "diesel": {"opacity_pct": 30.0, "no_ppm": 1500.0, "ringelmann": 1.0},
    "gasoline": {"co_pct": 2.5, "hc_ppm": 200.0, "no_ppm": 1500.0},
    "gas": {"co_pct": 2.5, "hc_ppm": 200.0, "no_ppm": 1500.0},
    "hybrid": {"co_pct": 2.5, "hc_ppm": 200.0, "no_ppm": 1500.0},
}


class Policy(BaseSettings):
    """The enforcement rules of DOMAIN.md, every number a default a city may override."""

    model_config = SettingsConfigDict(env_prefix="LANTIAN_POLICY_", frozen=True, extra="ignore")

    version: str = "2026.11"

    # Remote-sensing validity (HJ 845-style windows).
    speed_min_kmh: float = 5.0
    speed_max_kmh: float = 120.0
    acceleration_min_ms2: float = -2.0
    acceleration_max_ms2: float = 2.0
    vsp_min_kw_t: float = 0.0
    vsp_max_kw_t: float = 14.0
    wind_max_ms: float = 5.0
    temperature_min_c: float = -20.0
    temperature_max_c: float = 45.0
    humidity_max_pct: float = 85.0
    plate_confidence_min: float = 0.80
    co2_min_pct: float = 0.0  # a CO2 reading at or below this is no plume at all

    # Limits per fuel type: a value strictly greater than its limit exceeds.
    limits: Limits = Field(default_factory=lambda: json.loads(json.dumps(DEFAULT_LIMITS)))

    # Judgement rule: the same pollutant exceeding in this many consecutive valid
    # measurements, all within this many natural months, is a violation; an exceedance
    # less than the minimum gap after the run's last counted one is the same trip.
    judgement_run_length: int = 2
    judgement_window_months: int = 6
    judgement_min_gap_minutes: int = 60

    # Black smoke: a confirmed level strictly above this creates a violation; the estimate
    # is round(blackness / step), one Ringelmann level per 20% blackness.
    black_smoke_ringelmann_limit: int = 1
    ringelmann_step: float = 0.2

    # I/M loop.
    notice_deadline_days: int = 15
    penalty_amount_yuan: int = 200
    penalty_legal_basis: str = "大气污染防治法第一百一十三条 / 道路交通安全法第九十条"
    penalty_code: str = "6063"
    penalty_max_yuan: int = 100_000  # the largest amount a penalty may record
    notice_legal_basis: str = "《中华人民共和国大气污染防治法》第五十三条、第五十五条"

    # Blacklists and key supervision.
    strikes_threshold: int = 3
    strike_window_days_without_cycle: int = 365
    fleet_ratio_threshold: float = 0.10
    heavy_diesel_categories: list[str] = Field(default_factory=lambda: ["N2", "N3"])

    # The plans' supervision targets: at least this many distinct vehicles tested each
    # month ("每月抽测数量不得少于60辆"), and at least this share of the local diesel fleet
    # tested in the heating season ("秋冬季 ... 不低于当地柴油车保有量的80%"), which runs
    # from the start (month, day) to the end (month, day) inclusive, across the new year.
    monthly_quota_vehicles: int = 60
    winter_diesel_coverage: float = 0.80
    heating_season_start: tuple[int, int] = (10, 1)
    heating_season_end: tuple[int, int] = (3, 31)

    def as_record(self) -> dict[str, Any]:
        """The policy as stored beside each verdict (stable key order)."""
        return json.loads(self.model_dump_json())

    @cached_property
    def digest(self) -> str:
        """Content address of the policy: equal policies share one stored record."""
        blob = json.dumps(self.as_record(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Settings(BaseSettings):
    """Runtime settings; ``create_app(settings)`` and the worker take one of these."""

    model_config = SettingsConfigDict(env_prefix="LANTIAN_", extra="ignore")

    # "production" refuses to start without the keys below (core.keys).
    env: str = "development"
    # Where generated keys (and the default SQLite file) are kept.
    instance_dir: str = "instance"
    database_url: str = "sqlite:///instance/lantian.db"
    # A hot standby for the read-only listings, plate queries and statistics (docs/scaling.md);
    # unset, they read the primary. What a person just wrote is always read back from the primary.
    read_database_url: str | None = None
    redis_url: str | None = None
    # Redis behind Sentinel (docs/scaling.md): the sentinels as host:port,host:port,...; the
    # master's address comes from them, and LANTIAN_REDIS_URL (if set) gives only the
    # database number and password.
    redis_sentinels: str | None = None
    redis_sentinel_service: str = "lantian"
    # Unset: generated once into the instance folder (core.keys), never a public default.
    secret_key: str | None = None
    # Encrypts station secrets at rest; comma-separated, newest first, during a rotation.
    station_key_encryption_key: str | None = None
    # The worker appends a signed head of the audit chain here every hour.
    audit_checkpoint_dir: str | None = None
    audit_checkpoint_period_s: int = 3600
    timezone: str = "Asia/Shanghai"
    media_dir: str = "instance/media"
    # A CJK TrueType font for printed notices (Debian: fonts-wqy-microhei).
    notice_font: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    queue_name: str = "lantian"

    token_ttl_s: int = 8 * 3600
    # Sign-in throttling: this many failures in the window, for one username or from one
    # address, and sign-in answers 429 until the oldest of them leaves the window.
    signin_max_failures: int = 5
    signin_max_failures_per_address: int = 50
    signin_window_s: int = 15 * 60
    # The review page's cookie is sent over https only (set when served over https).
    cookie_secure: bool = False
    signature_window_s: int = 300
    future_tolerance_s: int = 300
    max_body_bytes: int = 1024 * 1024
    max_batch_events: int = 500
    max_registry_vehicles: int = 5000

    # A new station's calibration window opens this many days before its creation (the two
    # years of 行政处罚法 art. 36), so a buffered upload of what it measured before it was
    # connected still counts; and closes this many days after, unless given.
    station_calibrated_from_days: int = 730
    station_calibrated_until_days: int = 365

    # Black-smoke uploads.
    max_images: int = 3
    max_image_bytes: int = 5 * 1024 * 1024
    max_image_side_px: int = 8000

    # The sweeper re-enqueues events still unprocessed after this many seconds.
    sweep_after_s: int = 60
    judge_batch_size: int = 500
    # A drain job waits this long before its first claim and after each batch that was not
    # full (worker only, not inline), so live traffic is judged in batches.
    judge_linger_ms: int = 100

    # PostgreSQL: passing and invalid events measured before the month this many months ago
    # are dropped, whole partitions at a time, once counted for the statistics; events that
    # ground a violation, a revision or a listing are kept (remote_sensing.retention). 0: keep all.
    retention_months: int = Field(default=24, ge=0)

    policy: Policy = Field(default_factory=Policy)

    @property
    def uses_redis(self) -> bool:
        """Jobs go to Redis (else they run inline in the web process)."""
        return bool(self.redis_url or self.redis_sentinels)

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: str | None) -> str | None:
        if value is not None:
            sentinel_addresses(value)  # a typo is refused at start, not at the first job
        return value

    @field_validator("media_dir")
    @classmethod
    def _absolute_media_dir(cls, value: str) -> str:
        # Resolved once, against the working directory at start: the same base as the
        # default SQLite file (instance/lantian.db), and the same in the web process, the
        # CLI and the worker. Left relative, files were written against the working
        # directory but served against the package folder (Flask's send_file root).
        return str(Path(value).expanduser().absolute())


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as (host, port) pairs; ValueError names what is wrong."""
    found = []
    for part in value.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"LANTIAN_REDIS_SENTINELS: {part.strip()!r} is not host:port")
        found.append((host[1:-1] if host.startswith("[") and host.endswith("]") else host, int(port)))
    return found
