"""Housekeeping actors: the periodic upkeep workers run when the scheduler's leader sends it.

Each actor is declared with its periodiq `cron()` spec (actors/periodic.py).
A message that sat in the queue longer than its actor's period is skipped
(`SkipOutdated`): the next one is already on its way, and upkeep run late
only piles up.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import dramatiq
import pendulum
import prometheus_client
from dramatiq.middleware import SkipMessage
from periodiq import PeriodiqMiddleware

from actors.dispatch import Dispatcher
from actors.periodic import HOUSEKEEPING, period_seconds
from actors.queues import QueueAdmin
from settings import Settings
from storage.database import release_connection
from storage.models import utcnow
from storage.retention import delete_runs_ended_before
from storage.workers import forget_gone_workers

log = logging.getLogger(__name__)

QUEUE_MESSAGES = prometheus_client.Gauge(
    "dockyard_queue_messages", "Messages waiting in a run queue's level queues (.DQ: delayed retries, .XQ: dead letters).", ["queue"]
)


class SkipOutdated(PeriodiqMiddleware):
    """periodiq's skip of late periodic messages, with each actor's own period as the limit."""

    def before_process_message(self, broker, message):
        spec = broker.get_actor(message.actor_name).options.get("periodic")
        scheduled_at = message.options.get("scheduled_at")
        if spec is None or scheduled_at is None:
            return
        age = (pendulum.now("UTC") - pendulum.parse(scheduled_at)).total_seconds()
        if age > period_seconds(spec):
            log.info("skipping %s scheduled at %s: %.0fs old, longer than its period", message.actor_name, scheduled_at, age)
            raise SkipMessage()


@dataclass
class Housekeeping:
    settings: Settings
    dispatcher: Dispatcher
    queues: QueueAdmin

    def republish_unpublished(self) -> int:
        """The outbox: publish runs never published after 30 s, and retries overdue by 5 minutes."""
        return self.dispatcher.republish_lost(lease_grace=None)

    def reap_expired_leases(self) -> int:
        """Publish again runs whose lease expired a minute ago: a worker takes them over (worker_lost) and retries."""
        return self.dispatcher.republish_lost(unpublished_grace=None, retry_grace=None)

    def delete_old_runs(self) -> int:
        """Delete runs that ended more than DOCKYARD_RETENTION_DAYS ago (0 keeps them all), and the
        rows of workers not seen for a day."""
        if forgotten := forget_gone_workers():
            log.info("forgot %d worker(s) not seen for a day", forgotten)
        if not self.settings.retention_days:
            return 0
        deleted, more = delete_runs_ended_before(utcnow() - dt.timedelta(days=self.settings.retention_days))
        if deleted:
            log.info("retention: deleted %d run(s) that ended over %d days ago", deleted, self.settings.retention_days)
        if more:
            log.info("retention: more runs are due for deletion; the next hourly pass goes on")
        return deleted

    def measure_queues(self) -> dict[str, int]:
        """Set the queue-depth gauges of the run queue's level queues, their delay queues and its dead-letter queue."""
        depths = self.queues.depths(self.settings.default_queue)
        for queue, count in depths.items():
            QUEUE_MESSAGES.labels(queue).set(count)
        return depths


def declare_housekeeping_actors(broker: dramatiq.Broker, housekeeping: Housekeeping, queue_name: str) -> dict[str, dramatiq.Actor]:
    """Register every housekeeping actor on `broker` for `queue_name`, with its periodiq spec."""
    if not any(isinstance(m, PeriodiqMiddleware) for m in broker.middleware):
        broker.add_middleware(SkipOutdated())

    def actor(name: str, spec) -> dramatiq.Actor:
        task = getattr(housekeeping, name)

        def run() -> None:
            try:
                outcome = task()
                log.debug("housekeeping %s: %s", name, outcome)
            except Exception:
                # The next period's message is the retry; a failed one must not pile up as a dead letter.
                log.warning("housekeeping %s failed; the next period tries again", name, exc_info=True)
            finally:
                release_connection()

        run.__name__ = name
        # No retries: the next period's message is the retry. Priority 0 (the run
        # actor has RUN_ACTOR_PRIORITY): ahead of run messages waiting in this
        # worker for a free thread.
        return dramatiq.actor(run, actor_name=name, queue_name=queue_name, broker=broker, periodic=spec, max_retries=0, priority=0)

    return {name: actor(name, spec) for name, spec in HOUSEKEEPING.items()}
