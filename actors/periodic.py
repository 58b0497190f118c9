"""The housekeeping actors and when the scheduler's leader sends them, as periodiq cron() specs (UTC).

Workers declare the actors (actors/housekeeping.py); the leader reads this
table through actors.dispatch and sends each message at its time, stamped
with `scheduled_at` as periodiq does. A message that waited in the queue
longer than its actor's period is skipped, not run late.
"""

from __future__ import annotations

import functools

import pendulum
from periodiq import CronSpec, cron

HOUSEKEEPING: dict[str, CronSpec] = {
    # Runs whose message may be lost: never published, or a retry long overdue.
    "republish_unpublished": cron("* * * * *"),
    # Runs still `running` under a lease that expired long ago: their worker died.
    "reap_expired_leases": cron("* * * * *"),
    # Containers labelled with a run whose attempt is over.
    "remove_orphan_containers": cron("*/5 * * * *"),
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
