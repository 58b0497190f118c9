"""Administering the run queues on RabbitMQ: their depths, their declaration, their dead letters, and
whether the broker answers. Runs are made by actors/dispatch.py, not here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dramatiq
import pika.exceptions
from dramatiq.common import dq_name, xq_name

from actors.admission import Refusal
from actors.broker import admin_connection, broker_answers, broker_queues, create_broker, level_queues
from actors.dead_letters import DeadLetterQueue
from actors.dispatch import Dispatcher
from settings import Settings
from storage.models import Run


class QueueMismatch(Exception):
    """A run queue exists with other arguments than these settings ask for."""


class QueueAdmin:
    def __init__(self, broker: dramatiq.Broker):
        self.broker = broker

    def depths(self, queue: str) -> dict[str, int]:
        """Messages waiting in each level queue of a run queue (runs.high), their delay queues (.DQ) and
        the run queue's dead-letter queue (.XQ). A queue not declared yet holds nothing."""
        names = broker_queues(queue)
        return dict(zip(names, self._declared(names, lambda ok: ok.method.message_count), strict=True))

    def consumers(self, queue: str) -> int:
        """Consumers of a run queue: one per worker process taking runs from it (the fewest of its levels')."""
        return min(self.consumers_by_level(queue).values())

    def consumers_by_level(self, queue: str) -> dict[str, int]:
        """Consumers of each level queue of a run queue (runs.high -> n)."""
        names = level_queues(queue)
        return dict(zip(names, self._declared(names, lambda ok: ok.method.consumer_count), strict=True))

    def _declared(self, names: list[str], read) -> list[int]:
        connection = admin_connection(self.broker)
        try:
            answers = []
            channel = connection.channel()
            for name in names:
                try:
                    answers.append(read(channel.queue_declare(name, passive=True)))
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code != 404:  # NOT_FOUND: not declared yet
                        raise
                    answers.append(0)
                    channel = connection.channel()
            return answers
        finally:
            if connection.is_open:
                connection.close()

    def dead_letters(self, queue: str) -> DeadLetterQueue:
        """The dead-letter queue of a run queue, on this broker's RabbitMQ."""
        return DeadLetterQueue(lambda: admin_connection(self.broker), queue)

    def ensure(self, queue: str, *, recreate_if_empty: bool = False) -> str:
        """Declare a run queue's level queues, their delay queues and its dead-letter queue with the arguments
        these settings give them; return "ok", or "recreated" if any was."""
        wanted = [(name, self.broker.run_queue_arguments(name)) for name in level_queues(queue)]
        wanted += [(dq_name(name), self.broker.delay_queue_arguments(name)) for name in level_queues(queue)]
        wanted.append((xq_name(queue), self.broker.dead_letter_queue_arguments()))
        connection = admin_connection(self.broker)
        try:
            outcomes = [self._ensure_one(connection, name, arguments, recreate_if_empty) for name, arguments in wanted]
        finally:
            if connection.is_open:
                connection.close()
        return "recreated" if "recreated" in outcomes else "ok"

    @staticmethod
    def _ensure_one(connection, queue: str, arguments: dict, recreate_if_empty: bool) -> str:
        """Declare one queue with `arguments`. RabbitMQ refuses to redeclare a queue with other arguments (say a
        new length limit, or another queue type), closing the channel. An empty one may be deleted and declared
        again; a non-empty one raises QueueMismatch saying what to do."""
        try:
            connection.channel().queue_declare(queue, durable=True, arguments=arguments)
            return "ok"
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:  # PRECONDITION_FAILED: inequivalent arguments
                raise
            mismatch = exc.reply_text
        channel = connection.channel()
        waiting = channel.queue_declare(queue, passive=True).method.message_count
        if waiting or not recreate_if_empty:
            raise QueueMismatch(
                f"queue {queue!r} exists with other arguments ({mismatch}) and holds {waiting} message(s); "
                "see 'Changing the length limit on an existing queue' in docs/operations.md"
            )
        channel.queue_delete(queue)
        channel.queue_declare(queue, durable=True, arguments=arguments)
        return "recreated"

    def broker_ready(self) -> bool:
        """True if this thread can talk to the broker."""
        return broker_answers(self.broker)

    def broker_node(self) -> str | None:
        """host:port of the RabbitMQ node this thread's connection is on (None: none open, or not RabbitMQ)."""
        connected_node = getattr(self.broker, "connected_node", None)
        return connected_node() if connected_node is not None else None


def create_queue_admin(settings: Settings) -> QueueAdmin:
    """Queue administration on a broker of its own (entry points only)."""
    return QueueAdmin(create_broker(settings))


@dataclass(frozen=True)
class DeadLetterReplay:
    """What replaying dead-lettered runs came to."""

    replayed: list[tuple[Run, Run, bool]]  # (the original, its replay, whether made now rather than before)
    refused: list[tuple[Run, Refusal]]
    removed: int  # dead letters dropped from the dead-letter queues


def replay_dead_lettered(dispatcher: Dispatcher, admin: QueueAdmin, originals: Iterable[Run], progress=None) -> DeadLetterReplay:
    """Replay dead-lettered runs through the dispatcher (the API's rules: once each, refused if the processor is
    now disabled or gone), then drop the dead letters of those replayed from their queues' dead-letter queues;
    a refused run keeps its dead letter. `dockyard dlq replay` and the console's Dead letters page do this.
    `progress(original)` is called after each run is replayed or refused."""
    replayed, refused = [], []
    for original in originals:
        outcome = dispatcher.replay(original)
        if progress is not None:
            progress(original)
        if isinstance(outcome, Refusal):
            refused.append((original, outcome))
        else:
            replayed.append((original, *outcome))
    return DeadLetterReplay(replayed, refused, drop_dead_letters(admin, [original for original, _, _ in replayed]))


def drop_dead_letters(admin: QueueAdmin, runs: Iterable[Run]) -> int:
    """Delete these runs' messages from their queues' dead-letter queues (the runs keep their history), and
    no other message; return how many were deleted."""
    by_queue: dict[str, set[str]] = {}
    for run in runs:
        by_queue.setdefault(run.queue, set()).add(run.id)
    return sum(admin.dead_letters(queue).remove(run_ids) for queue, run_ids in by_queue.items())
