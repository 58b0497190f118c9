"""What to do at a schedule's fire time: pure decisions, no clock, no database.

Catch-up: of the fire times that came while no leader ran, the latest is
fired once if it is within the schedule's catch-up window; the others were
coalesced into it, or missed. Overlap, as Kubernetes CronJob's
concurrencyPolicy: `allow` fires regardless, `forbid` skips the fire while a
run of the schedule has not ended, `replace` cancels that run and fires.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from storage.specs import Overlap

# A fire handled this late is on time whatever the catch-up window says: the
# leader's own jitter, a database blip, or a leader change (which takes a few
# seconds) must not drop a fire.
ON_TIME_SECONDS = 20

FIRE = "fire"
SKIP = "skip"
REPLACE = "replace"


@dataclass(frozen=True)
class CatchUp:
    fire: dt.datetime | None  # the one fire time to run now, if any
    coalesced: list[dt.datetime] = field(default_factory=list)  # due, within the window, folded into `fire`
    missed: list[dt.datetime] = field(default_factory=list)  # due, older than the window: not run


def plan_catchup(due: list[dt.datetime], now: dt.datetime, window_seconds: int) -> CatchUp:
    """Split the due fire times (oldest first, none after `now`) into the one to fire, the coalesced and the missed."""
    if not due:
        return CatchUp(None)
    horizon = now - dt.timedelta(seconds=max(window_seconds, ON_TIME_SECONDS))
    missed = [t for t in due if t < horizon]
    within = [t for t in due if t >= horizon]
    if not within:
        return CatchUp(None, missed=missed)
    return CatchUp(within[-1], coalesced=within[:-1], missed=missed)


def overlap_action(policy: str, has_active_run: bool) -> str:
    """FIRE, SKIP or REPLACE for a fire time, given the schedule's overlap policy."""
    if not has_active_run or policy == Overlap.ALLOW:
        return FIRE
    if policy == Overlap.FORBID:
        return SKIP
    if policy == Overlap.REPLACE:
        return REPLACE
    raise ValueError(f"unknown overlap policy {policy!r}")
