"""The one enqueue seam: create a run row, publish its id, or leave nothing behind.

web/, scheduling/ and cli/ submit runs only through `Dispatcher.submit`.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq import Message
from dramatiq.errors import BrokerConnectionError

from actors.broker import BROKER_PRIORITIES, RUN_ACTOR, broker_answers, create_broker
from settings import Settings
from storage import runs as run_store
from storage.models import Run

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker did not confirm the publish; the run was withdrawn."""


def run_message(run: Run) -> Message:
    """The message for a run: only its id, at the run's broker priority."""
    return Message(
        queue_name=run.queue,
        actor_name=RUN_ACTOR,
        args=(run.id,),
        kwargs={},
        options={"broker_priority": BROKER_PRIORITIES[run.priority]},
    )


class Dispatcher:
    def __init__(self, broker: dramatiq.Broker):
        self.broker = broker

    def publish(self, run: Run) -> None:
        """Publish a run's message and wait for the broker's confirm; raise QueueUnavailable if refused."""
        try:
            self.broker.enqueue(run_message(run))
        except BrokerConnectionError as exc:
            raise QueueUnavailable(f"the broker did not accept the run: {exc}") from exc
        run_store.mark_published(run.id)

    def submit(self, **fields) -> Run:
        """Insert a queued run and publish it; on a refused publish, withdraw the row and raise."""
        run = run_store.create_run(**fields)
        try:
            self.publish(run)
        except QueueUnavailable:
            run_store.withdraw_unpublished(run.id)
            raise
        return run

    def broker_ready(self) -> bool:
        """True if this thread can talk to the broker."""
        return broker_answers(self.broker)


def create_dispatcher(settings: Settings) -> Dispatcher:
    """A dispatcher on a fresh confirming broker (entry points only)."""
    return Dispatcher(create_broker(settings))
