"""The scheduler process's loop: campaign for leadership; while leading, keep the timers in step.

Every copy campaigns; the one holding the lock (scheduling.leadership) runs
APScheduler with one timer per firing schedule and one per housekeeping
actor, and every `sync_seconds` re-reads the schedules table and checks it
still holds the lock. Losing the lock, or SIGTERM, stops the timers and
gives the lock up; another copy takes over at its next try.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import peewee
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from actors.dispatch import Dispatcher
from actors.periodic import HousekeepingSender
from scheduling import metrics
from scheduling.cron_jobs import CronJobs
from scheduling.firing import Firer
from scheduling.housekeeping import add_housekeeping_timers
from scheduling.leadership import Leadership
from storage import schedules as schedule_store
from storage.database import release_connection
from storage.models import utcnow

log = logging.getLogger(__name__)

# A change made through the API reaches the leader's timers within this.
SYNC_SECONDS = 2.0
# How often a copy that does not lead tries the lock.
CAMPAIGN_SECONDS = 1.0
FIRE_THREADS = 4


class Leader:
    def __init__(
        self,
        leadership: Leadership,
        dispatcher: Dispatcher,
        *,
        name: str,
        sync_seconds: float = SYNC_SECONDS,
        campaign_seconds: float = CAMPAIGN_SECONDS,
        housekeeping: HousekeepingSender | None = None,
    ):
        self.leadership = leadership
        self.dispatcher = dispatcher
        self.firer = Firer(dispatcher)
        self.name = name
        self.sync_seconds = sync_seconds
        self.campaign_seconds = campaign_seconds
        self.housekeeping = housekeeping
        self.leading = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Campaign and lead until `stop` is set; give the lock up on the way out."""
        metrics.LEADER.set(0)
        while not stop.is_set():
            if not self.leadership.try_acquire():
                stop.wait(self.campaign_seconds)
                continue
            metrics.LEADER.set(1)
            metrics.LEADER_CHANGES.inc()
            self.leading.set()
            log.info("scheduler %s leads", self.name)
            try:
                self._lead(stop)
            finally:
                self.leading.clear()
                self.leadership.release()
                metrics.LEADER.set(0)
                log.info("scheduler %s stepped down", self.name)

    def _fire(self, schedule_id: str) -> None:
        try:
            self.firer.fire_due(schedule_id)
        except Exception:
            # The schedule stays due: the next sync wakes its timer again.
            log.warning("schedule %s: fire failed; retrying shortly", schedule_id, exc_info=True)
        finally:
            release_connection()

    def _lead(self, stop: threading.Event) -> None:
        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(FIRE_THREADS)},
            # NOTE: the fire decides what is late (the catch-up window), not APScheduler.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        jobs = CronJobs(scheduler, self._fire)
        if self.housekeeping is not None:
            add_housekeeping_timers(scheduler, self.housekeeping)
        scheduler.start()
        try:
            while not stop.is_set():
                if not self.leadership.held():
                    log.warning("scheduler %s lost the leader lock", self.name)
                    return
                try:
                    jobs.sync(schedule_store.firing_schedules(), utcnow())
                except peewee.PeeweeException:
                    log.warning("could not read the schedules; retrying in %.0fs", self.sync_seconds, exc_info=True)
                except Exception:
                    # A bug or a surprise must not end leadership silently nor the process.
                    log.exception("schedule timers out of step; retrying in %.0fs", self.sync_seconds)
                finally:
                    release_connection()
                stop.wait(self.sync_seconds)
        finally:
            # Fires in progress finish (each is short); no new one starts.
            scheduler.shutdown(wait=True)
