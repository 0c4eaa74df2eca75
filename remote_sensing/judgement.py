"""The remote-sensing judgement rule (DOMAIN.md section 2).

The first valid exceedance of a pollutant is a warning. The same pollutant exceeding in
``policy.judgement_run_length`` consecutive valid measurements of a vehicle, the first
and the last within ``policy.judgement_window_months`` natural months, is a violation,
after which the run starts afresh. A valid measurement in which the pollutant passes
breaks its run; one that does not measure it leaves the run as it is.

Run state is a JSON-able dict per vehicle, ``{pollutant: {"count": int, "first": iso}}``,
holding only pollutants with a run in progress (a judgement or a pass removes the entry;
a run whose first exceedance has left the window is replaced at the next exceedance).
Measurements of one vehicle must be judged in ``measured_at`` order: the rule is about
consecutive measurements.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.settings import Policy

# {"count": int, "first": iso8601 str}; kept JSON-able so it can live in a JSON column.
Run = dict[str, Any]
Runs = dict[str, Run]


@dataclass(frozen=True)
class Judgement:
    """New run state, the pollutants judged over the limit now, and those only warned."""

    runs: Runs
    judged: list[str]
    warnings: list[str]


def _require_aware(dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}: an aware one is required")


def months_before(dt: datetime, months: int, tz: ZoneInfo) -> datetime:
    """The same local wall time ``months`` natural months earlier in ``tz``.

    The day is clamped to the target month's length (Aug 31 minus 6 months is Feb 28,
    or 29 in a leap year), because natural months are counted on the local calendar.
    """
    _require_aware(dt)
    local = dt.astimezone(tz)
    index = local.year * 12 + (local.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def _parse_first(run: Mapping[str, object]) -> datetime:
    first = datetime.fromisoformat(str(run["first"]))
    _require_aware(first)
    return first


def judge(
    prev_runs: Mapping[str, Mapping[str, Any]] | None,
    measured_at: datetime,
    measured: set[str],
    exceeded: set[str],
    policy: Policy,
    tz: ZoneInfo,
) -> Judgement:
    """Apply one valid measurement of a vehicle to its runs.

    ``measured`` are the limited pollutants the event has a value for, ``exceeded`` those
    above their limit (an exceeded pollutant counts as measured). The input runs are
    not modified.
    """
    _require_aware(measured_at)
    runs: Runs = {p: dict(run) for p, run in (prev_runs or {}).items()}
    for passed in measured - exceeded:
        runs.pop(passed, None)

    window_start = months_before(measured_at, policy.judgement_window_months, tz)
    judged: list[str] = []
    warnings: list[str] = []
    for pollutant in sorted(exceeded):
        run = runs.get(pollutant)
        if run is not None and _parse_first(run) >= window_start:
            count, first = int(run["count"]) + 1, str(run["first"])
        else:
            count, first = 1, measured_at.astimezone(tz).isoformat()
        if count >= policy.judgement_run_length:
            judged.append(pollutant)
            runs.pop(pollutant, None)  # the violation starts a new, empty run
        else:
            warnings.append(pollutant)
            runs[pollutant] = {"count": count, "first": first}
    return Judgement(runs=runs, judged=judged, warnings=warnings)
