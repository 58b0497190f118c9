"""Cron expressions in a schedule's time zone: validation and fire times.

APScheduler's CronTrigger does the calendar arithmetic. On top of it, one
rule for the autumn daylight-saving change: a fixed-hour schedule whose
wall-clock time happens twice (02:30 in Europe/Berlin on the last Sunday of
October) fires once, at the first; a schedule with a wildcard hour (`*/15 * *
* *`) keeps firing in real time through the repeated hour. In spring a
wall-clock time that does not exist fires once, when the clock has jumped
(02:30 becomes 03:30 CEST), as APScheduler does.

Times in and out are naive UTC, like every timestamp column.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

UTC = dt.UTC
# How far ahead to look when checking a schedule's shortest interval.
INTERVAL_SAMPLES = 50


class CronError(ValueError):
    """A bad cron expression or time zone; `field` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")):
        raise CronError("timezone", "must be an IANA time zone name such as Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError("timezone", f"unknown IANA time zone {name!r}") from None


def trigger(expression: str, timezone: str) -> CronTrigger:
    """The CronTrigger of a five-field expression (minute hour day month weekday) in `timezone`."""
    tz = zone(timezone)
    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise CronError("cron", "must have five fields: minute hour day-of-month month day-of-week")
    try:
        return CronTrigger.from_crontab(expression, timezone=tz)
    except ValueError as exc:
        raise CronError("cron", f"invalid: {exc}") from None


def _hour_is_fixed(expression: str) -> bool:
    hour = expression.split()[1]
    return not hour.startswith("*")


# A fixed-hour schedule looks for its fires from this long before the instant
# asked about: APScheduler finds the fire that a spring change moved (02:30 ->
# 03:30 CEST) only from a time before the change, and the autumn repeat is
# recognised only knowing the fire before it.
FIXED_HOUR_LOOKBACK = dt.timedelta(hours=2)
MAX_STEPS = 200


def next_fire_after(expression: str, timezone: str, after: dt.datetime, previous: dt.datetime | None = None) -> dt.datetime | None:
    """The first fire strictly after `after` (naive UTC), or None if there is none.

    `previous` (naive UTC), the fire before `after` if known, lets a repeated
    wall-clock time be skipped across calls.
    """
    trig, tz = trigger(expression, timezone), zone(timezone)
    fixed_hour = _hour_is_fixed(expression)
    cursor = after - FIXED_HOUR_LOOKBACK if fixed_hour else after
    last = previous
    for _ in range(MAX_STEPS):
        fire = _first_fire_after(trig, tz, cursor, last if fixed_hour else None)
        if fire is None or fire > after:
            return fire
        last = cursor = fire
    return None


def _first_fire_after(trig: CronTrigger, tz: ZoneInfo, after: dt.datetime, previous: dt.datetime | None) -> dt.datetime | None:
    """APScheduler's next fire strictly after `after` (naive UTC), but never the autumn repeat of `previous`'s wall time."""
    # NOTE: arithmetic on an aware local time drops its fold (which of a
    # repeated hour it is in): step in UTC, then convert.
    cursor = (after + dt.timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(tz)
    last_wall = previous.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None, fold=0) if previous else None
    for _ in range(16):
        fire = trig.get_next_fire_time(None, cursor)
        if fire is None:
            return None
        # (A fire at the cursor itself is after `after`: the cursor is `after` + 1 µs.)
        if fire.astimezone(UTC) < cursor.astimezone(UTC):
            # NOTE: inside the repeated autumn hour APScheduler answers with the
            # first occurrence of the wall time (fold=0), which is already past.
            fire = fire.replace(fold=1)
            if fire.astimezone(UTC) < cursor.astimezone(UTC):
                cursor = (cursor.astimezone(UTC) + dt.timedelta(minutes=1)).astimezone(tz)
                continue
        if last_wall is not None and fire.replace(tzinfo=None, fold=0) == last_wall:
            cursor = (fire.astimezone(UTC) + dt.timedelta(microseconds=1)).astimezone(tz)  # the autumn repeat
            continue
        return fire.astimezone(UTC).replace(tzinfo=None)
    return None


def fires_between(expression: str, timezone: str, start: dt.datetime, end: dt.datetime, limit: int = 10_000) -> list[dt.datetime]:
    """Fire times t with start < t <= end (naive UTC), oldest first."""
    fires: list[dt.datetime] = []
    previous = None
    cursor = start
    while len(fires) < limit:
        fire = next_fire_after(expression, timezone, cursor, previous)
        if fire is None or fire > end:
            break
        fires.append(fire)
        previous = cursor = fire
    return fires


def shortest_interval(expression: str, timezone: str, start: dt.datetime) -> dt.timedelta | None:
    """The shortest gap between consecutive fires over the next INTERVAL_SAMPLES fires."""
    fires = fires_between(expression, timezone, start, start + dt.timedelta(days=800), limit=INTERVAL_SAMPLES)
    gaps = [b - a for a, b in itertools.pairwise(fires)]
    return min(gaps) if gaps else None
