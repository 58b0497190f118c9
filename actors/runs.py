"""The run actor: thin, it hands each delivery to the Executor."""

from __future__ import annotations

import dramatiq

from actors.broker import RUN_ACTOR
from actors.execution import Executor

# Slack over the longest run for image checks, create/remove and log drain.
ACTOR_SLACK_SECONDS = 300


def declare_run_actor(broker: dramatiq.Broker, executor: Executor, queue_name: str) -> dramatiq.Actor:
    """Register the run actor on `broker` for `queue_name`."""

    def execute_run(run_id: str) -> None:
        executor.execute(run_id)

    return dramatiq.actor(
        execute_run,
        actor_name=RUN_ACTOR,
        queue_name=queue_name,
        broker=broker,
        # The container runner enforces each run's own timeout; this only
        # catches a worker thread that is stuck far beyond any run.
        time_limit=(executor.settings.max_timeout_seconds + ACTOR_SLACK_SECONDS) * 1000,
        max_retries=0,
    )
