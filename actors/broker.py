"""Build the Dramatiq RabbitMQ broker the way DESIGN.md §5 asks."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from settings import Settings

# API priority -> AMQP priority. Few levels: each costs the broker.
BROKER_PRIORITIES = {"low": 0, "normal": 1, "high": 2, "critical": 3}
MAX_PRIORITY = max(BROKER_PRIORITIES.values())
RUN_ACTOR = "execute_run"


def create_broker(settings: Settings, *, middleware: list | None = None) -> dramatiq.Broker:
    """A confirming RabbitMQ broker with priority queues (x-max-priority) and Dramatiq's DLX queues."""
    # NOTE: confirm_delivery is off by default in Dramatiq; without it a
    # publish the broker dropped looks like a success.
    broker = RabbitmqBroker(
        url=settings.broker_url,
        confirm_delivery=True,
        max_priority=MAX_PRIORITY,
        middleware=middleware,
    )
    broker.declare_queue(settings.default_queue)
    return broker


def broker_answers(broker: dramatiq.Broker) -> bool:
    """True if this thread's broker connection is (or can be made) open."""
    if not isinstance(broker, RabbitmqBroker):
        return True  # in-memory brokers (tests) have nothing to lose
    try:
        broker.connection.process_data_events(time_limit=0)
        return True
    except Exception:
        try:
            del broker.connection
        except Exception:
            pass
        return False
