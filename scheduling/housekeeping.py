"""The leader's housekeeping timers: send each housekeeping actor's message at its periodiq cron time.

Workers run the actors (actors/housekeeping.py). A fire the leader could
not make in time (it was not leading, or it was busy) is not made late:
the next period's message does the work.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from actors.dispatch import Dispatcher
from scheduling import metrics

log = logging.getLogger(__name__)

# How late a housekeeping timer may still send its message.
SEND_GRACE_SECONDS = 30


def add_housekeeping_timers(scheduler: BaseScheduler, dispatcher: Dispatcher) -> list[str]:
    """One APScheduler job per housekeeping actor, on its periodiq spec in UTC; return the job ids."""
    ids = []
    for name, expression in dispatcher.housekeeping_schedule().items():
        job = scheduler.add_job(
            send_housekeeping,
            trigger=CronTrigger.from_crontab(expression, timezone=dt.UTC),
            args=[dispatcher, name],
            id=f"housekeeping:{name}",
            name=f"housekeeping {name}",
            replace_existing=True,
            misfire_grace_time=SEND_GRACE_SECONDS,
            coalesce=True,
        )
        ids.append(job.id)
    return ids


def send_housekeeping(dispatcher: Dispatcher, name: str, now: dt.datetime | None = None) -> None:
    """Send one housekeeping message, stamped with the minute it is for."""
    scheduled_at = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    try:
        dispatcher.send_housekeeping(name, scheduled_at)
    except Exception as exc:  # the broker is away or refusing: the next period sends again
        log.warning("could not send housekeeping %s: %s; the next period will", name, exc)
        return
    metrics.HOUSEKEEPING_SENT.labels(name).inc()
