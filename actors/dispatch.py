"""The one enqueue seam: create a run row, publish its id, or leave nothing behind.

web/, scheduling/ and cli/ submit runs only through `Dispatcher.submit`.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time

import dramatiq
import peewee
import pika.exceptions
from dramatiq import Message
from dramatiq.common import dq_name, xq_name
from dramatiq.errors import BrokerConnectionError

from actors.broker import BROKER_PRIORITIES, RUN_ACTOR, admin_connection, broker_answers, create_broker
from actors.dead_letters import DeadLetterQueue
from actors.periodic import HOUSEKEEPING
from settings import Settings
from storage import runs as run_store
from storage.database import database, release_connection
from storage.models import Run, utcnow

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker did not confirm the publish; the run was withdrawn."""


class QueueMismatch(Exception):
    """A run queue exists with other arguments than these settings ask for."""


def run_message(run: Run) -> Message:
    """The message for a run: only its id, at the run's broker priority."""
    return Message(
        queue_name=run.queue,
        actor_name=RUN_ACTOR,
        args=(run.id,),
        kwargs={},
        options={"broker_priority": BROKER_PRIORITIES[run.priority]},
    )


class PublishedMarks:
    """Records `published_at` for confirmed runs in batches, off the request path.

    A mark that is late or lost (process killed, database down) only means
    the outbox republishes that run later, and a second message for a run
    is dropped by the worker's claim: harmless.
    """

    MAX_PENDING = 100_000
    BATCH = 500

    def __init__(self, interval_seconds: float = 0.05):
        self.interval_seconds = interval_seconds
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        with self._lock:
            if len(self._pending) < self.MAX_PENDING:
                self._pending.append(run_id)
            if self._thread is None:
                # Started on first use, so a process that forks after import gets its own.
                self._thread = threading.Thread(target=self._loop, name="published-marks", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def flush(self) -> int:
        """Write the pending marks now; return how many runs were marked."""
        with self._lock:
            pending, self._pending = self._pending, []
        marked, opened_here = 0, database.is_closed()
        try:
            for start in range(0, len(pending), self.BATCH):
                marked += run_store.mark_published(pending[start : start + self.BATCH])
        except Exception:
            log.warning("could not record %d published runs; the outbox will republish them", len(pending), exc_info=True)
        finally:
            if opened_here:
                release_connection()
        return marked

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval_seconds)
            if self._pending:
                self.flush()


class Dispatcher:
    def __init__(self, broker: dramatiq.Broker, housekeeping_queue: str = "housekeeping"):
        self.broker = broker
        self.housekeeping_queue = housekeeping_queue
        self.marks = PublishedMarks()

    def publish(self, run: Run) -> None:
        """Publish a run's message and wait for the broker's confirm; raise QueueUnavailable if refused."""
        try:
            self.broker.enqueue(run_message(run))
        except BrokerConnectionError as exc:
            # Dramatiq wraps the broker's nack (a full queue) after retrying it.
            if isinstance(getattr(exc, "message", None), pika.exceptions.NackError):
                raise QueueUnavailable(f"queue {run.queue!r} is full; try again later") from exc
            raise QueueUnavailable(f"the broker did not accept the run: {exc}") from exc
        self.marks.add(run.id)

    def submit(self, *, keep_if_refused: bool = False, **fields) -> Run:
        """Insert a queued run and publish it; on a refused publish, withdraw the row and raise.

        With `keep_if_refused` (no client is waiting: a schedule's fire) the run
        stays queued and unpublished instead, for the outbox to publish later.
        """
        run = run_store.create_run(**fields)
        try:
            self.publish(run)
        except QueueUnavailable as exc:
            if keep_if_refused:
                log.warning("run %s is stored but not yet published (%s); the outbox will publish it", run.id, exc)
                return run
            run_store.withdraw_unpublished(run.id)
            raise
        return run

    def republish_lost(
        self, *, unpublished_grace: float | None = 30, lease_grace: float | None = 60, retry_grace: float | None = 300
    ) -> int:
        """The outbox sweep: publish again each run whose message may be lost; return how many.

        Never published (the API died or the broker refused after the row was
        written), running under a lease expired long ago (its worker and its
        message are gone), or retrying or waiting for a quota long past its time (its delayed message
        was lost); a grace of None leaves that kind out. A run published twice
        is harmless: the second delivery finds the run taken and is dropped.
        """
        count = 0
        for run in run_store.runs_to_republish(
            utcnow(), unpublished_grace=unpublished_grace, lease_grace=lease_grace, retry_grace=retry_grace
        ):
            try:
                self.publish(run)
            except QueueUnavailable as exc:
                log.warning("outbox: could not republish run %s: %s", run.id, exc)
                break
            log.info("outbox: republished run %s (%s)", run.id, run.state)
            count += 1
        self.marks.flush()
        return count

    def replay(self, original: Run) -> tuple[Run, bool]:
        """A new run repeating `original` (which must have ended other than succeeded); (run, created).

        At most one replay per run (a unique index): asking again returns
        the one made before, also when two requests race.
        """
        existing = run_store.find_replay(original.id)
        if existing is not None:
            return existing, False
        try:
            return (
                self.submit(
                    tenant_id=original.tenant_id,
                    processor=original.processor,
                    queue=original.queue,
                    priority=original.priority,
                    payload=original.payload,
                    labels=original.labels,
                    timeout_seconds=original.timeout_seconds,
                    max_attempts=original.max_attempts,
                    replay_of=original.id,
                ),
                True,
            )
        except peewee.IntegrityError:
            existing = run_store.find_replay(original.id)
            if existing is None:
                raise
            return existing, False

    def housekeeping_schedule(self) -> dict[str, str]:
        """Housekeeping actor -> its periodiq cron spec (UTC): what the scheduler's leader sends, and when."""
        return {name: str(spec) for name, spec in HOUSEKEEPING.items()}

    def send_housekeeping(self, actor_name: str, scheduled_at: dt.datetime) -> None:
        """Send one housekeeping message (the leader's periodic upkeep), stamped as periodiq stamps it."""
        if actor_name not in HOUSEKEEPING:
            raise ValueError(f"{actor_name!r} is not a housekeeping actor")
        options = {"scheduled_at": scheduled_at.astimezone(dt.UTC).isoformat()}
        self.broker.enqueue(Message(queue_name=self.housekeeping_queue, actor_name=actor_name, args=(), kwargs={}, options=options))

    def queue_depths(self, queue: str) -> dict[str, int]:
        """Messages waiting in a run queue, its delay queue (.DQ) and its dead-letter queue (.XQ)."""
        connection = admin_connection(self.broker)
        try:
            channel = connection.channel()
            return {
                name: channel.queue_declare(name, passive=True).method.message_count for name in (queue, dq_name(queue), xq_name(queue))
            }
        finally:
            if connection.is_open:
                connection.close()

    def dead_letters(self, queue: str) -> DeadLetterQueue:
        """The dead-letter queue of a run queue, on this dispatcher's RabbitMQ."""
        return DeadLetterQueue(lambda: admin_connection(self.broker), queue)

    def ensure_queue(self, queue: str, *, recreate_if_empty: bool = False) -> str:
        """Declare a run queue with the arguments these settings give it; return "ok" or "recreated".

        RabbitMQ refuses to redeclare a queue with other arguments (say a new
        length limit). An empty one may be deleted and declared again; a
        non-empty one raises QueueMismatch saying what to do.
        """
        arguments = self.broker.run_queue_arguments(queue)
        connection = admin_connection(self.broker)
        try:
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
        finally:
            if connection.is_open:
                connection.close()

    def broker_ready(self) -> bool:
        """True if this thread can talk to the broker."""
        return broker_answers(self.broker)


def create_dispatcher(settings: Settings) -> Dispatcher:
    """A dispatcher on a fresh confirming broker (entry points only)."""
    return Dispatcher(create_broker(settings), housekeeping_queue=settings.housekeeping_queue)
