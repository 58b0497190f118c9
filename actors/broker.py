"""Build the Dramatiq RabbitMQ broker: publisher confirms, a queue per priority level, a length limit,
dead-letter queues, classic or quorum queues (docs/operations.md, "RabbitMQ", says why each).

A run queue (`runs`, or a processor's own) is four queues on the broker, one
per priority level: `runs.critical`, `runs.high`, `runs.normal`, `runs.low`,
each with Dramatiq's delay queue (`runs.high.DQ`), and one dead-letter queue
for all four (`runs.XQ`). Quorum queues have no message priority; a level per
queue gives the order with either type: each level has its own run actor, and
a worker's free thread takes the message of the highest level it holds.
"""

from __future__ import annotations

import logging
import random

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import dq_name, q_name, xq_name

from settings import QUEUE_TYPES, Settings
from storage.specs import Priority

# The run actor of each level; Dramatiq runs a worker's messages lowest actor priority first.
RUN_ACTORS = {priority: f"execute_run_{priority.value}" for priority in Priority}
RUN_ACTOR_PRIORITIES = {Priority.CRITICAL: 10, Priority.HIGH: 11, Priority.NORMAL: 12, Priority.LOW: 13}
log = logging.getLogger(__name__)


def level_queue(queue: str, priority: Priority | str) -> str:
    """The broker queue of a run queue's priority level: runs.high."""
    return f"{queue}.{Priority(priority).value}"


def level_queues(queue: str) -> list[str]:
    """A run queue's four level queues, highest first."""
    return [level_queue(queue, p) for p in sorted(Priority, key=RUN_ACTOR_PRIORITIES.get)]


def broker_queues(queue: str) -> list[str]:
    """Every broker queue of a run queue: its level queues, their delay queues, its dead-letter queue."""
    return [*level_queues(queue), *map(dq_name, level_queues(queue)), xq_name(queue)]


def run_queue_of(name: str) -> str | None:
    """The run queue a level queue (or its delay queue) belongs to: runs.high.DQ -> runs; None for other queues."""
    base, _, level = q_name(name).rpartition(".")
    return base if base and level in {p.value for p in Priority} else None


def node_of(connection: pika.BlockingConnection) -> str:
    """host:port of the RabbitMQ node a connection reached (of several URLs, the one that answered)."""
    params = connection._impl.params
    return f"{params.host}:{params.port}"


class DockyardBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, with queues of one type, level queues that share their run queue's
    dead-letter queue, and main queues that refuse publishes past a length limit.

    With `x-overflow: reject-publish` a full queue nacks the publish, which a
    confirming publisher sees: the API answers 503 instead of piling up an
    unbounded backlog. Only the main queues are limited: a delay queue holds
    retries already accepted, and refusing them would lose runs.
    """

    def __init__(self, *, queue_max_length: int, queue_type: str = "classic", **kwargs):
        if queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue_type must be one of {QUEUE_TYPES}, not {queue_type!r}")
        self.queue_max_length = queue_max_length
        self.queue_type = queue_type
        super().__init__(**kwargs)

    def _typed(self, arguments: dict) -> dict:
        # NOTE: classic is RabbitMQ's default; saying so explicitly would make queues
        # declared before this argument existed "inequivalent" (406).
        return {**arguments, "x-queue-type": "quorum"} if self.queue_type == "quorum" else arguments

    def _dead_letter_queue(self, queue_name: str) -> str:
        return xq_name(run_queue_of(queue_name) or q_name(queue_name))

    def _build_queue_arguments(self, queue_name):
        return self._typed({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self._dead_letter_queue(queue_name)})

    def run_queue_arguments(self, queue_name: str) -> dict:
        """The arguments a main queue is declared with (they cannot change on an existing queue)."""
        return {**self._build_queue_arguments(queue_name), "x-max-length": self.queue_max_length, "x-overflow": "reject-publish"}

    def delay_queue_arguments(self, queue_name: str) -> dict:
        """The arguments of a main queue's delay queue (queue_name.DQ): no length limit."""
        return self._build_queue_arguments(queue_name)

    def dead_letter_queue_arguments(self) -> dict:
        # Dramatiq's: dead letters expire after 7 days (a static TTL: RabbitMQ expires from the head).
        return self._typed({"x-message-ttl": DEAD_MESSAGE_TTL})

    def _declare_xq_queue(self, queue_name):
        return self.channel.queue_declare(
            queue=self._dead_letter_queue(queue_name), durable=True, arguments=self.dead_letter_queue_arguments()
        )

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
    """A confirming RabbitMQ broker of DOCKYARD_QUEUE_TYPE queues: a queue per priority level, a length limit and
    Dramatiq's delay and dead-letter queues. Queues are declared on first use (a publish, a consumer)."""
    # NOTE: confirm_delivery is off by default in Dramatiq; without it a
    # publish the broker dropped looks like a success.
    urls = settings.broker_urls()
    # Each process starts from a node of its own: connections spread over a cluster's nodes.
    start = random.randrange(len(urls))
    urls = urls[start:] + urls[:start]
    return DockyardBroker(
        url=urls if len(urls) > 1 else urls[0],
        confirm_delivery=True,
        middleware=middleware,
        queue_max_length=settings.queue_max_length,
        queue_type=settings.queue_type,
    )


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
