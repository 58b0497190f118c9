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

from actors.containers import ContainerRunner
from actors.dispatch import Dispatcher
from actors.periodic import HOUSEKEEPING, period_seconds
from actors.queues import QueueAdmin
from settings import Settings
from storage import runs as run_store
from storage.database import release_connection
from storage.models import utcnow
from storage.retention import delete_runs_ended_before
from storage.run_states import RunState

log = logging.getLogger(__name__)

# A container younger than this is never an orphan: its attempt may be starting.
ORPHAN_MIN_AGE_SECONDS = 60
# An empty parent cgroup younger than this may belong to a container being created (actors/usage.py).
LEFTOVER_CGROUP_MIN_AGE_SECONDS = 600
QUEUE_MESSAGES = prometheus_client.Gauge(
    "dockyard_queue_messages", "Messages waiting in a run queue (.DQ: delayed retries, .XQ: dead letters).", ["queue"]
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


def orphan_reason(attempt_label: str | None, run_view: tuple[str, int, str | None] | None) -> str | None:
    """Why a run's container is an orphan (its attempt is over), or None if an attempt may still own it.

    A container of a run this database does not know is left alone: it may
    belong to another Dockyard sharing the Docker engine.
    """
    if run_view is None:
        return None
    state, attempts, _owner = run_view
    if state != RunState.RUNNING:
        return f"its run is {state}"
    if attempt_label != str(attempts):
        return f"its attempt {attempt_label} is over (the run is on attempt {attempts})"
    return None


def _created(container) -> dt.datetime:
    return dt.datetime.fromtimestamp(container.attrs["Created"], dt.UTC).replace(tzinfo=None)


@dataclass
class Housekeeping:
    settings: Settings
    dispatcher: Dispatcher
    queues: QueueAdmin
    runner: ContainerRunner
    orphan_min_age_seconds: float = ORPHAN_MIN_AGE_SECONDS

    def republish_unpublished(self) -> int:
        """The outbox: publish runs never published after 30 s, and retries overdue by 5 minutes."""
        return self.dispatcher.republish_lost(lease_grace=None)

    def reap_expired_leases(self) -> int:
        """Publish again runs whose lease expired a minute ago: a worker takes them over (worker_lost) and retries."""
        return self.dispatcher.republish_lost(unpublished_grace=None, retry_grace=None)

    def remove_orphan_containers(self) -> int:
        """Remove containers on this engine whose attempt is over (a dead worker's leftovers), and the
        empty parent cgroups such workers left (actors/usage.py)."""
        removed = 0
        now = utcnow()
        for container in self.runner.run_containers():
            if (now - _created(container)).total_seconds() < self.orphan_min_age_seconds:
                continue
            labels = container.attrs.get("Labels") or {}
            run_id = labels.get("dockyard.run_id", "")
            why = orphan_reason(labels.get("dockyard.attempt"), run_store.lease_view(run_id))
            if why is None:
                continue
            log.info("removing orphan container %s of run %s: %s", container.short_id, run_id, why)
            self.runner.remove(container)
            removed += 1
        if getattr(self.runner, "usage", None) is not None:
            # The parent cgroups of containers whose worker died before it could read and remove them.
            for name in self.runner.usage.remove_leftovers(max(self.orphan_min_age_seconds, LEFTOVER_CGROUP_MIN_AGE_SECONDS)):
                log.info("removed cgroup %s that a stopped worker left", name)
        return removed

    def delete_old_runs(self) -> int:
        """Delete runs that ended more than DOCKYARD_RETENTION_DAYS ago (0 keeps them all)."""
        if not self.settings.retention_days:
            return 0
        deleted, more = delete_runs_ended_before(utcnow() - dt.timedelta(days=self.settings.retention_days))
        if deleted:
            log.info("retention: deleted %d run(s) that ended over %d days ago", deleted, self.settings.retention_days)
        if more:
            log.info("retention: more runs are due for deletion; the next hourly pass goes on")
        return deleted

    def measure_queues(self) -> dict[str, int]:
        """Set the queue-depth gauges of the run queue, its delay queue and its dead-letter queue."""
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
