"""The run actor: thin, it hands each delivery to the Executor."""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware

from actors.broker import RUN_ACTOR_PRIORITIES, RUN_ACTORS, level_queue
from actors.execution import DeadLettered, Executor, is_retried_by_broker
from storage.database import release_connection
from storage.specs import Priority
from telemetry.logs import pop_context, push_context

# Slack over the longest run for image checks, create/remove and log drain.
ACTOR_SLACK_SECONDS = 300
RUN_ACTOR_NAMES = frozenset(RUN_ACTORS.values())


class ReleaseDatabaseConnection(Middleware):
    """Each message starts with a connection from the pool, not one a database restart may have cut."""

    def after_process_message(self, broker, message, *, result=None, exception=None):
        release_connection()

    def after_skip_message(self, broker, message):
        release_connection()


class RunLogContext(Middleware):
    """Dramatiq's own lines about a run's message (retrying it, failing it to the DLQ) carry its run_id."""

    def __init__(self):
        self._tokens = threading.local()

    def before_process_message(self, broker, message):
        if message.actor_name in RUN_ACTOR_NAMES and message.args:
            self._tokens.token = push_context(run_id=str(message.args[0]))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        token = getattr(self._tokens, "token", None)
        if token is not None:
            self._tokens.token = None
            pop_context(token)

    after_skip_message = after_process_message


def declare_run_actors(broker: dramatiq.Broker, executor: Executor, queue_name: str) -> dict[Priority, dramatiq.Actor]:
    """Register on `broker` the run actor of each priority level of run queue `queue_name`: each consumes its
    level's queue (runs.high), and Dramatiq hands a worker's free thread the message of the highest level it
    holds (actor priority, lower first: critical 10 ... low 13; housekeeping, 0, goes ahead of all)."""
    for middleware in (CurrentMessage, ReleaseDatabaseConnection, RunLogContext):
        if not any(isinstance(m, middleware) for m in broker.middleware):
            broker.add_middleware(middleware())

    def execute_run(run_id: str) -> None:
        message = CurrentMessage.get_current_message()
        executor.execute(run_id, message.options if message is not None else None)

    return {
        priority: dramatiq.actor(
            execute_run,
            actor_name=RUN_ACTORS[priority],
            queue_name=level_queue(queue_name, priority),
            broker=broker,
            # The container runner enforces each run's own timeout; this only
            # catches a worker thread that is stuck far beyond any run.
            time_limit=(executor.settings.max_timeout_seconds + ACTOR_SLACK_SECONDS) * 1000,
            # Dramatiq's Retries middleware routes each message: RetryLater (a
            # run's backoff, computed by actors.retry_policy) and database outages
            # come back after their delay; anything else fails to the DLQ.
            retry_when=is_retried_by_broker,
            throws=(DeadLettered,),
            min_backoff=1000,
            max_backoff=60_000,
            priority=RUN_ACTOR_PRIORITIES[priority],
        )
        for priority in Priority
    }
