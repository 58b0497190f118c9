"""The leader's timers: one APScheduler job per firing schedule, kept in step with the schedules table.

APScheduler is the alarm clock; the database says what is due (see
scheduling.firing). Each job's next run time is the schedule's
`next_fire_at`, so a job re-added after a change, or after a leader change,
wakes at the first fire time not yet handled, past or future.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from storage.cron import CronError, next_fire_after, trigger
from storage.models import Schedule

log = logging.getLogger(__name__)

UTC = dt.UTC
# A schedule whose fire time passed this long ago without being handled (its
# job failed: the database or broker was away) gets its job woken again.
OVERDUE_SECONDS = 2.0


def _naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


class ScheduleTrigger(BaseTrigger):
    """A schedule's fire times for APScheduler: CronTrigger's calendar in the schedule's zone, with
    storage.cron's daylight-saving rule (a fixed-hour job runs once on both change days)."""

    def __init__(self, expression: str, timezone: str):
        trigger(expression, timezone)  # raises CronError on a bad spec
        self.expression = expression
        self.timezone = timezone

    def get_next_fire_time(self, previous_fire_time, now):
        # The job catches up everything due when it runs, so after a run the
        # next wake-up is the first fire time after now.
        after = now if previous_fire_time is None else max(previous_fire_time, now)
        previous = _naive_utc(previous_fire_time) if previous_fire_time is not None else None
        fire = next_fire_after(self.expression, self.timezone, _naive_utc(after), previous)
        return None if fire is None else fire.replace(tzinfo=UTC)

    def __str__(self) -> str:
        return f"cron[{self.expression} {self.timezone}]"


class CronJobs:
    """Adds, replaces and removes the scheduler's jobs so that they match the firing schedules."""

    def __init__(self, scheduler: BaseScheduler, fire: Callable[[str], object]):
        self.scheduler = scheduler
        self.fire = fire
        # schedule id -> what its job was made from
        self.versions: dict[str, tuple] = {}
        # schedule id -> the version that could not be timed (logged once)
        self.broken: dict[str, tuple] = {}

    def sync(self, schedules: list[Schedule], now: dt.datetime) -> dict[str, int]:
        """Make the jobs match `schedules` (unpaused, with a next fire time); count what changed."""
        counts = {"added": 0, "changed": 0, "removed": 0, "woken": 0}
        wanted = {s.id: s for s in schedules}
        for schedule_id in [sid for sid in self.versions if sid not in wanted]:
            self._remove(schedule_id)
            counts["removed"] += 1
        for s in schedules:
            version = (s.cron, s.timezone, s.updated_at, s.next_fire_at)
            known = self.versions.get(s.id)
            overdue = (now - s.next_fire_at).total_seconds() > OVERDUE_SECONDS
            if known == version and not overdue:
                continue
            try:
                job_trigger = ScheduleTrigger(s.cron, s.timezone)
            except CronError as exc:
                # One bad row (say a zone this host's tzdata lacks) must not stop the others.
                if self.broken.get(s.id) != version:
                    log.error("schedule %s (%s) cannot be timed here: %s", s.name, s.id, exc)
                    self.broken[s.id] = version
                continue
            self.broken.pop(s.id, None)
            if known is None:
                counts["added"] += 1
            elif known != version:
                counts["changed"] += 1
            else:
                counts["woken"] += 1
            self.scheduler.add_job(
                self.fire,
                trigger=job_trigger,
                args=[s.id],
                id=s.id,
                name=f"schedule {s.name}",
                replace_existing=True,
                next_run_time=s.next_fire_at.replace(tzinfo=UTC),
            )
            self.versions[s.id] = version
        if any(counts.values()):
            log.debug("schedule timers: %s", counts)
        return counts

    def _remove(self, schedule_id: str) -> None:
        try:
            self.scheduler.remove_job(schedule_id)
        except JobLookupError:
            pass
        del self.versions[schedule_id]
