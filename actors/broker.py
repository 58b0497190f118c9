"""Build the Dramatiq RabbitMQ broker: publisher confirms, priority queues, a length limit and dead-letter queues
(docs/operations.md, "RabbitMQ", says why each)."""

from __future__ import annotations

import logging
import random

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from settings import Settings
from storage.specs import Priority

# API priority -> AMQP priority (0 = low). Few levels: each costs the broker.
BROKER_PRIORITIES = {priority: level for level, priority in enumerate(Priority)}
MAX_PRIORITY = max(BROKER_PRIORITIES.values())
RUN_ACTOR = "execute_run"
log = logging.getLogger(__name__)


def node_of(connection: pika.BlockingConnection) -> str:
    """host:port of the RabbitMQ node a connection reached (of several URLs, the one that answered)."""
    params = connection._impl.params
    return f"{params.host}:{params.port}"


class DockyardBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, whose run queues refuse publishes past a length limit.

    With `x-overflow: reject-publish` a full queue nacks the publish, which a
    confirming publisher sees: the API answers 503 instead of piling up an
    unbounded backlog. Only the main queue is limited: the delay queue holds
    retries already accepted, and refusing them would lose runs.
    """

    def __init__(self, *, queue_max_length: int, **kwargs):
        self.queue_max_length = queue_max_length
        super().__init__(**kwargs)

    def run_queue_arguments(self, queue_name: str) -> dict:
        """The arguments a run queue is declared with (they cannot change on an existing queue)."""
        arguments = self._build_queue_arguments(queue_name)
        arguments.update({"x-max-length": self.queue_max_length, "x-overflow": "reject-publish"})
        return arguments

    @property
    def connection(self) -> pika.BlockingConnection:
        """This thread's connection (Dramatiq's), saying in the log which node each new one reached."""
        new = getattr(self.state, "connection", None) is None
        connection = RabbitmqBroker.connection.fget(self)
        if new:
            log.info("connected to RabbitMQ at %s", node_of(connection))
        return connection

    @connection.deleter
    def connection(self) -> None:
        RabbitmqBroker.connection.fdel(self)

    def connected_node(self) -> str | None:
        """The node this thread's connection is on, if it has one open."""
        connection = getattr(self.state, "connection", None)
        return node_of(connection) if connection is not None and connection.is_open else None

    def _declare_queue(self, queue_name):
        return self.channel.queue_declare(queue=queue_name, durable=True, arguments=self.run_queue_arguments(queue_name))


def create_broker(settings: Settings, *, middleware: list | None = None) -> dramatiq.Broker:
    """A confirming RabbitMQ broker with priority queues (x-max-priority), a length limit and Dramatiq's DLX queues."""
    # NOTE: confirm_delivery is off by default in Dramatiq; without it a
    # publish the broker dropped looks like a success.
    urls = settings.broker_urls()
    # Each process starts from a node of its own: connections spread over a cluster's nodes.
    start = random.randrange(len(urls))
    urls = urls[start:] + urls[:start]
    broker = DockyardBroker(
        url=urls if len(urls) > 1 else urls[0],
        confirm_delivery=True,
        max_priority=MAX_PRIORITY,
        middleware=middleware,
        queue_max_length=settings.queue_max_length,
    )
    broker.declare_queue(settings.default_queue)
    return broker


def admin_connection(broker: RabbitmqBroker) -> pika.BlockingConnection:
    """A connection of its own on the broker's RabbitMQ, for queue administration
    (Dramatiq's per-thread connection is left to publishing)."""
    return pika.BlockingConnection(broker.parameters)


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
