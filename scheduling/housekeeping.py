"""The leader's housekeeping timers: send each housekeeping actor's message at its periodiq cron time.

Workers run the actors (actors/housekeeping.py). A fire the leader could
not make in time (it was not leading, or it was busy) is not made late:
the next period's message does the work.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.base import BaseScheduler

from actors.periodic import HousekeepingSender
from scheduling import metrics
from scheduling.cron_jobs import ScheduleTrigger

log = logging.getLogger(__name__)

# How late a housekeeping timer may still send its message.
SEND_GRACE_SECONDS = 30


def add_housekeeping_timers(scheduler: BaseScheduler, sender: HousekeepingSender) -> list[str]:
    """One APScheduler job per housekeeping actor, on its cron spec in UTC; return the job ids.

    The spec is read as schedules' cron is (storage/cron.py: day of week 0 is
    Sunday), not as APScheduler's from_crontab reads it (0 is Monday).
    """
    ids = []
    for name, expression in sender.schedule().items():
        job = scheduler.add_job(
            send_housekeeping,
            trigger=ScheduleTrigger(expression, "UTC"),
            args=[sender, name],
            id=f"housekeeping:{name}",
            name=f"housekeeping {name}",
            replace_existing=True,
            misfire_grace_time=SEND_GRACE_SECONDS,
            coalesce=True,
        )
        ids.append(job.id)
    return ids


def send_housekeeping(sender: HousekeepingSender, name: str, now: dt.datetime | None = None) -> None:
    """Send one housekeeping message, stamped with the minute it is for."""
    scheduled_at = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    try:
        sender.send(name, scheduled_at)
    except Exception as exc:  # the broker is away or refusing: the next period sends again
        log.warning("could not send housekeeping %s: %s; the next period will", name, exc)
        return
    metrics.HOUSEKEEPING_SENT.labels(name).inc()
