"""The remote-sensing judgement rule (DOMAIN.md sections 2 and 7), as pure functions.

The first valid exceedance of a pollutant is a warning. The same pollutant exceeding in
``policy.judgement_run_length`` consecutive valid measurements of a vehicle within
``policy.judgement_window_months`` natural months is a violation, after which the run
starts afresh. Natural months follow the Civil Code (arts. 201-203): a run that began on
local day D holds members up to and including the same day number of the N-th month
after D (that month's last day when it has none); the hour never matters. When the
oldest member leaves the window, the members still inside it stay in the run.

An exceedance less than ``policy.judgement_min_gap_minutes`` after the run's last counted
exceedance is the same trip: it neither extends nor breaks the run. A valid measurement
in which the pollutant passes breaks its run; one that does not measure it leaves the run
as it is. A verified repair (a run reset) ends every run.

Run state is a JSON-able dict per vehicle, ``{pollutant: {"members": [[local iso, event
id], ...], "last": local iso}}``: the counted exceedances of the run in progress and the
last counted exceedance (kept after a judgement, for the minimum gap). Entries that can no
longer matter are pruned at every step, so two histories that agree on what matters have
equal states: the replay's convergence test compares states for equality.

``replay`` folds ``judge`` over a vehicle's timeline in measurement order.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.settings import Policy

# {"members": [[iso, event id], ...], "last": iso}; JSON-able so it lives in a JSON column.
Run = dict[str, Any]
Runs = dict[str, Run]


@dataclass(frozen=True)
class Judgement:
    """New run state, the pollutants judged over the limit now, those only warned, the
    event ids of each judged run (`grounds`) and of all of them together (`events`), in
    measurement order."""

    runs: Runs
    judged: list[str]
    warnings: list[str]
    grounds: dict[str, list[int]] = field(default_factory=dict)
    events: list[int] = field(default_factory=list)


def _require_aware(dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}: an aware one is required")


def window_end(start: date, months: int) -> date:
    """The last local day of a period of ``months`` natural months starting on ``start``.

    The same day number ``months`` months later, or that month's last day when it has
    none (Aug 31 + 6 months ends on Feb 28, or 29 in a leap year); the period runs to
    24:00 of that day, so a measurement on it is inside.
    """
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def within_window(first: datetime, at: datetime, months: int, tz: ZoneInfo) -> bool:
    """Whether ``at`` falls inside the window opened by ``first``, on local calendar days."""
    return at.astimezone(tz).date() <= window_end(first.astimezone(tz).date(), months)


def _parse(iso: str) -> datetime:
    dt = datetime.fromisoformat(iso)
    _require_aware(dt)
    return dt


def _pruned(run: Mapping[str, Any], at: datetime, policy: Policy, tz: ZoneInfo) -> Run | None:
    """The run as it matters at ``at``: members outside the window dropped, and None once
    nothing of it (no member, no recent last exceedance) can affect a measurement."""
    members = [list(m) for m in run.get("members", [])]
    while members and not within_window(_parse(members[0][0]), at, policy.judgement_window_months, tz):
        members.pop(0)
    last = run.get("last")
    if not members and (last is None or at - _parse(last) >= timedelta(minutes=policy.judgement_min_gap_minutes)):
        return None
    return {"members": members, "last": last}


def judge(
    prev_runs: Mapping[str, Mapping[str, Any]] | None,
    measured_at: datetime,
    event_id: int,
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
    runs: Runs = {}
    for pollutant, run in (prev_runs or {}).items():
        kept = _pruned(run, measured_at, policy, tz)
        if kept is not None:
            runs[pollutant] = kept
    for passed in measured - exceeded:
        runs.pop(passed, None)

    gap = timedelta(minutes=policy.judgement_min_gap_minutes)
    local = measured_at.astimezone(tz).isoformat()
    judged: list[str] = []
    warnings: list[str] = []
    grounds: dict[str, list[int]] = {}
    members_judged: set[tuple[datetime, int]] = set()
    for pollutant in sorted(exceeded):
        run = runs.get(pollutant)
        if run is not None and run["last"] is not None and measured_at - _parse(run["last"]) < gap:
            continue  # the same trip as the last counted exceedance
        members = (run["members"] if run else []) + [[local, event_id]]
        if len(members) >= policy.judgement_run_length:
            judged.append(pollutant)
            grounds[pollutant] = [member[1] for member in members]
            members_judged |= {(_parse(member[0]), member[1]) for member in members}
            runs[pollutant] = {"members": [], "last": local}  # the violation starts a new, empty run
        else:
            warnings.append(pollutant)
            runs[pollutant] = {"members": members, "last": local}
    events = [pk for _, pk in sorted(members_judged)]
    return Judgement(runs=runs, judged=judged, warnings=warnings, grounds=grounds, events=events)


# --- the fold over a vehicle's timeline ------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """A valid, judgeable measurement of the vehicle."""

    at: datetime
    id: int
    measured: frozenset[str]
    exceeded: frozenset[str]

    @property
    def key(self) -> tuple[datetime, int]:
        return (self.at, self.id)


@dataclass(frozen=True)
class Reset:
    """A verified repair (a passing retest that closed a case): every run ends at ``at``.

    With `ends_runs` False it is a mark that changes nothing itself: a correction took
    measurements from ``at`` on out of the timeline, and what follows is re-judged without them.
    It sorts before a measurement taken at the same instant (key id 0; events start at 1).
    """

    at: datetime
    id: int
    ends_runs: bool = True

    @property
    def key(self) -> tuple[datetime, int]:
        return (self.at, 0)


Item = Measurement | Reset


@dataclass(frozen=True)
class Step:
    """The rule's outcome at one item of the timeline (a reset judges nothing)."""

    item: Item
    judgement: Judgement


def order_key(item: Item) -> tuple[datetime, int, int]:
    """Measurement order: (time, 0 for a reset / event id, reset id) so equal keys never tie."""
    return (*item.key, item.id if isinstance(item, Reset) else 0)


def step(prev: Runs | None, item: Item, policy: Policy, tz: ZoneInfo) -> Judgement:
    if isinstance(item, Reset):
        return Judgement(runs={} if item.ends_runs or prev is None else prev, judged=[], warnings=[])
    return judge(prev, item.at, item.id, set(item.measured), set(item.exceeded), policy, tz)


def replay(timeline: Iterable[Item], start: Runs | None, policy: Policy, tz: ZoneInfo) -> Iterator[Step]:
    """Fold the rule over ``timeline`` (in measurement order) from the state ``start``.

    Lazy, so a caller can stop at convergence: once a step's state equals the one stored
    for that item, every later step would be the same as stored.
    """
    runs = start
    for item in timeline:
        result = step(runs, item, policy, tz)
        runs = result.runs
        yield Step(item, result)


@dataclass(frozen=True)
class Stored:
    """An item of the stored timeline: the run state stored after it and its current decision."""

    item: Item
    runs: Runs
    judged: list[str]
    warnings: list[str]
    revisions: int = 0


@dataclass(frozen=True)
class Outcome:
    """The rule at one item of a re-judged stretch: a new item (`stored` None) or a stored one;
    `cause` is the latest new item at or before it (what changed its input)."""

    item: Item
    judgement: Judgement
    stored: Stored | None
    cause: Item | None


# Where a re-judged stretch starts: the stored state just before a key, and the stored items after it.
Seek = Callable[[tuple[datetime, int, int]], tuple[Runs | None, Iterator[Stored]]]


def rejudge(new: Iterable[Item], seek: Seek, policy: Policy, tz: ZoneInfo) -> Iterator[Outcome]:
    """Merge new items into the stored timeline, in measurement order, and re-judge what follows.

    From the stored state before the first new item, the rule runs over the new items and
    the stored ones after them (read lazily through `seek`). At the first stored item whose
    recomputed state equals its stored one, the stored timeline stands as it is up to the
    next new item (convergence), where the replay starts again from the stored state: a
    late item costs what it can change, never the vehicle's whole history.
    """
    queue = sorted(new, key=order_key, reverse=True)
    while queue:
        runs, stored = seek(order_key(queue[-1]))
        cause: Item | None = None
        following = next(stored, None)
        while queue or following is not None:
            if queue and (following is None or order_key(queue[-1]) < order_key(following.item)):
                item = cause = queue.pop()
                result = step(runs, item, policy, tz)
                yield Outcome(item, result, None, cause)
            else:
                assert following is not None
                result = step(runs, following.item, policy, tz)
                yield Outcome(following.item, result, following, cause)
                if result.runs == following.runs:
                    break  # converged
                following = next(stored, None)
            runs = result.runs
