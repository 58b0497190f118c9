"""Cron expressions in a schedule's time zone: validation and fire times.

APScheduler's CronTrigger does the calendar arithmetic, read the way cron
reads an expression: day of week 0 or 7 is Sunday (APScheduler counts from
Monday), and when both day of month and day of week are restricted either
one matching is enough (APScheduler wants both).

Daylight saving, as a person expects it:
- A schedule with a fixed hour (`30 2 * * *`) follows the wall clock: it
  fires once at each matching wall-clock time. A time that happens twice
  (02:30 on the last Sunday of October in Europe/Berlin) fires at the first;
  a time that does not exist (02:30 on the last Sunday of March) fires when
  the clock has jumped (03:30 CEST), midnight changes included.
- A schedule with a wildcard hour (`*/15 * * * *`) keeps firing in real
  time through both changes.

Times in and out are naive UTC, like every timestamp column.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

UTC = dt.UTC
# How far ahead to look when checking a schedule's shortest interval.
INTERVAL_SAMPLES = 50
# A wall-clock search starts this far back: a time the spring change moved
# (02:30 -> 03:30) is found only from a wall time before it.
WALL_LOOKBACK = dt.timedelta(hours=2)
MAX_STEPS = 500
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering: 0 (and 7) is Sunday
APSCHEDULER_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CronError(ValueError):
    """A bad cron expression or time zone; `field` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")):
        raise CronError("timezone", "must be an IANA time zone name such as Europe/Berlin or UTC")
    return _zone(name)


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
        raise CronError("timezone", f"unknown IANA time zone {name!r}") from None


def _weekday(token: str) -> int:
    token = token.lower()
    if token in WEEKDAYS:
        return WEEKDAYS.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"day of week {token!r} is not 0-7 or sun-sat")


def _weekdays(field: str) -> set[int]:
    """Cron's day-of-week field as a set of days, 0 = Sunday."""
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be positive")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = _weekday(low), _weekday(high)
            if last == 0 and first > 0:
                last = 7  # 5-7 and fri-sun run to Sunday
            if last < first:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            first = _weekday(span)
            last = 6 if step_text else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def trigger(expression: str, timezone: str) -> BaseTrigger:
    """APScheduler's trigger for a five-field expression (minute hour day month weekday), read as cron reads it."""
    zone(timezone)
    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise CronError("cron", "must have five fields: minute hour day-of-month month day-of-week")
    return _trigger(expression, timezone)


@functools.lru_cache(maxsize=1024)
def _trigger(expression: str, timezone: str) -> BaseTrigger:
    tz = zone(timezone)
    minute, hour, day, month, weekday = expression.split()
    try:
        if weekday == "*":
            week = "*"
        else:
            ordered = sorted({(d - 1) % 7 for d in _weekdays(weekday)})  # APScheduler's numbering: 0 is Monday
            week = ",".join(APSCHEDULER_WEEKDAYS[d] for d in ordered)
        common = {"minute": minute, "hour": hour, "month": month, "timezone": tz}
        if not day.startswith("*") and not weekday.startswith("*"):
            # NOTE: cron fires when either day field matches; APScheduler when both do.
            return OrTrigger([CronTrigger(day=day, **common), CronTrigger(day_of_week=week, **common)])
        return CronTrigger(day=day, day_of_week=week, **common)
    except ValueError as exc:
        raise CronError("cron", f"invalid: {exc}") from None


def _hour_is_fixed(expression: str) -> bool:
    return not expression.split()[1].startswith("*")


def _wall(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The naive wall-clock time in `tz` of a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)


def _instant(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The naive UTC instant of a wall-clock time: the first of a repeated one, and for one that
    does not exist, the instant the clock shows it moved by the change (fold=0, PEP 495)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC).replace(tzinfo=None)


def next_fire_after(expression: str, timezone: str, after: dt.datetime, previous: dt.datetime | None = None) -> dt.datetime | None:
    """The first fire strictly after `after` (naive UTC), or None if there is none.

    `previous` (naive UTC), the fire at or before `after` if known, saves the
    look back a fixed-hour search otherwise makes.
    """
    trig, tz = trigger(expression, timezone), zone(timezone)
    if not _hour_is_fixed(expression):
        return _next_real_time(trig, tz, after)
    # Fixed hour: step through wall-clock times (the expression read in UTC,
    # which has no daylight saving) and map each to its instant.
    walls = trigger(expression, "UTC")
    cursor = _wall(after, tz) - WALL_LOOKBACK
    if previous is not None and previous <= after:
        cursor = max(cursor, _wall(previous, tz))
    for _ in range(MAX_STEPS):
        wall = walls.get_next_fire_time(None, (cursor + dt.timedelta(microseconds=1)).replace(tzinfo=UTC))
        if wall is None:
            return None
        cursor = wall.replace(tzinfo=None)
        instant = _instant(cursor, tz)
        if instant > after:
            return instant
    return None


def _next_real_time(trig: BaseTrigger, tz: ZoneInfo, after: dt.datetime) -> dt.datetime | None:
    # NOTE: arithmetic on an aware local time drops its fold (which of a
    # repeated hour it is in): step in UTC, then convert.
    cursor = (after + dt.timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(tz)
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
