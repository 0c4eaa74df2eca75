"""Strikes, blacklists and key supervision, evaluated in the violation's own transaction."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.registry import Vehicle
from core.settings import Policy
from enforcement.models import Violation


def on_violation(session: Session, violation: Violation, vehicle: Vehicle, policy: Policy, tz: ZoneInfo) -> None:
    """Count the strike and list the vehicle or its fleet when a rule is met (see issue: blacklists)."""
