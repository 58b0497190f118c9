"""The housekeeping actors and when the scheduler's leader sends them, as periodiq cron() specs (UTC).

Workers declare the actors (actors/housekeeping.py); the scheduler's leader
sends each message at its time through `HousekeepingSender`, stamped with
`scheduled_at` as periodiq does. A message that waited in the queue longer
than its actor's period is skipped, not run late. Only the worker and the
scheduler import this module (and periodiq with it); the API does not.
"""

from __future__ import annotations

import datetime as dt
import functools

import dramatiq
import pendulum
from dramatiq import Message
from periodiq import CronSpec, cron

HOUSEKEEPING: dict[str, CronSpec] = {
    # Runs whose message may be lost: never published, or a retry long overdue.
    "republish_unpublished": cron("* * * * *"),
    # Runs still `running` under a lease that expired long ago: their worker died.
    "reap_expired_leases": cron("* * * * *"),
    # Runs that ended more than DOCKYARD_RETENTION_DAYS ago, with their attempts, events and logs.
    "delete_old_runs": cron("23 * * * *"),
    # Messages waiting in the run queue, its delay queue and its dead-letter queue.
    "measure_queues": cron("* * * * *"),
}


@functools.cache
def _period_seconds(expression: str) -> float:
    spec = cron(expression)
    first = spec.next_valid_date(pendulum.datetime(2026, 1, 5, tz="UTC"))
    return (spec.next_valid_date(first) - first).total_seconds()


def period_seconds(spec: CronSpec) -> float:
    """The gap between two fires of a spec (from a fixed Monday: the same answer every time)."""
    return _period_seconds(str(spec))


class HousekeepingSender:
    """Sends housekeeping messages to the queue the workers' housekeeping actors listen on."""

    def __init__(self, broker: dramatiq.Broker, queue: str):
        self.broker = broker
        self.queue = queue

    def schedule(self) -> dict[str, str]:
        """Housekeeping actor -> its cron spec (UTC, read as cron reads it): what to send, and when."""
        return {name: str(spec) for name, spec in HOUSEKEEPING.items()}

    def send(self, actor_name: str, scheduled_at: dt.datetime) -> None:
        """Send one housekeeping message, stamped with the time it is for as periodiq stamps it."""
        if actor_name not in HOUSEKEEPING:
            raise ValueError(f"{actor_name!r} is not a housekeeping actor")
        options = {"scheduled_at": scheduled_at.astimezone(dt.UTC).isoformat()}
        self.broker.enqueue(Message(queue_name=self.queue, actor_name=actor_name, args=(), kwargs={}, options=options))
