"""The one door to new runs: admit, insert a run row, publish its id; or leave nothing behind.

web/, scheduling/ and cli/ make runs only through `Dispatcher.submit` and
`Dispatcher.replay`, which apply the admission rules (actors/admission.py)
first. Queue administration lives in actors/queues.py.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading

import dramatiq
import peewee
import pika.exceptions
from dramatiq import Message
from dramatiq.errors import BrokerConnectionError
from opentelemetry import trace

from actors import admission, metrics
from actors.admission import Refusal
from actors.broker import RUN_ACTORS, create_broker, level_queue
from settings import Settings
from storage import runs as run_store
from storage import schedules as schedule_store
from storage.database import database, release_connection
from storage.group_commit import GroupCommit
from storage.models import Run, Schedule, utcnow
from storage.processors import ProcessorCache, run_fields
from storage.schedules import FireKind
from storage.specs import Priority
from telemetry.logs import log_context
from telemetry.tracing import context_of, detail_span, link_to, submit_span, traceparent, tracer

log = logging.getLogger(__name__)
tracing = tracer(__name__)


class QueueUnavailable(Exception):
    """The broker did not confirm the publish; the run was withdrawn."""


def run_message(run: Run, trace_context: str | None = None) -> Message:
    """The message for a run: only its id, on its run queue's level queue (runs.high) for its level's run actor,
    with the trace context its attempts continue (a W3C traceparent in the options, kept when Dramatiq retries
    the message)."""
    options = {"traceparent": trace_context} if trace_context else {}
    priority = Priority(run.priority)
    return Message(queue_name=level_queue(run.queue, priority), actor_name=RUN_ACTORS[priority], args=(run.id,), kwargs={}, options=options)


class PublishedMarks:
    """Records `published_at` for confirmed runs in batches, off the request path.

    A mark that is late or lost (process killed, database down) only means
    the outbox republishes that run later, and a second message for a run
    is dropped by the worker's claim: harmless. `close()` writes what is
    pending and stops the thread.
    """

    MAX_PENDING = 100_000
    BATCH = 500

    def __init__(self, interval_seconds: float = 0.05):
        self.interval_seconds = interval_seconds
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, run_id: str) -> None:
        with self._lock:
            if len(self._pending) < self.MAX_PENDING:
                self._pending.append(run_id)
            if self._thread is None and not self._stop.is_set():
                # Started on first use, so a process that forks after import gets its own.
                self._thread = threading.Thread(target=self._loop, name="published-marks", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def flush(self) -> int:
        """Write the pending marks now; return how many runs were marked."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
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

    def close(self) -> None:
        """Stop the thread and write what is pending; marks added later are written by `flush` only."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
            atexit.unregister(self.close)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            if self._pending:
                self.flush()


class Dispatcher:
    """Makes runs: checks the admission rules, inserts the row, publishes the message.

    `processors` is where it reads processors (a cache on the API's submit
    path; by default every lookup reads the database). With `group_commit`
    (the API's), concurrent submissions share their insert and commit
    (storage/group_commit.py); otherwise each run is its own statement.
    """

    def __init__(self, broker: dramatiq.Broker, *, processors: ProcessorCache | None = None, group_commit: bool = False):
        self.broker = broker
        self.processors = processors if processors is not None else ProcessorCache(max_age_seconds=0)
        self.marks = PublishedMarks()
        self.inserts = GroupCommit() if group_commit else None

    def close(self) -> None:
        """Write pending published marks and stop their thread (and the group commit's)."""
        if self.inserts is not None:
            self.inserts.close()
        self.marks.close()

    def publish(self, run: Run, *, context=None) -> None:
        """Publish a run's message and wait for the broker's confirm; raise QueueUnavailable if refused.

        The publish is a span of `context` (by default the current one); the
        message carries the publish span's context, which the attempts continue.
        """
        with detail_span(
            tracing,
            f"{run.queue} publish",
            context=context,
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": run.queue, "dockyard.run_id": run.id},
        ) as span:
            try:
                self.broker.enqueue(run_message(run, traceparent(span)))
            except BrokerConnectionError as exc:
                # Dramatiq wraps the broker's nack (a full queue) after retrying it.
                if isinstance(getattr(exc, "message", None), pika.exceptions.NackError):
                    metrics.PUBLISH_FAILURES.labels(reason="queue_full").inc()
                    raise QueueUnavailable(f"queue {run.queue!r} is full; try again later") from exc
                metrics.PUBLISH_FAILURES.labels(reason="broker_error").inc()
                raise QueueUnavailable(f"the broker did not accept the run: {exc}") from exc
        self.marks.add(run.id)

    def trigger(self, schedule: Schedule, *, now: dt.datetime | None = None) -> Run | Refusal:
        """A run of `schedule` made now by hand (not a cron fire: its next fire time stays), recorded in its fire
        records as triggered; or the Refusal of a submission rule."""
        now = now or utcnow()
        run = self.submit(**schedule_store.fire_submission(schedule), scheduled_for=now)
        if not isinstance(run, Refusal):
            schedule_store.record_fire(schedule, now, FireKind.TRIGGERED, run_id=run.id)
        return run

    def refusal(self, processor: str) -> Refusal | None:
        """Why a run of `processor` would be refused now (missing or disabled), or None."""
        found = admission.processor_for_run(self.processors, processor)
        return found if isinstance(found, Refusal) else None

    def submit(
        self,
        processor: str,
        *,
        tenant_id: str | None,
        priority: Priority = Priority.NORMAL,
        payload=None,
        labels: dict[str, str] | None = None,
        timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        schedule_id: str | None = None,
        scheduled_for: dt.datetime | None = None,
        keep_if_refused: bool = False,
    ) -> Run | Refusal:
        """A new queued, published run of `processor`, or the Refusal of an admission rule (nothing written).

        A refused publish withdraws the row and raises QueueUnavailable; with
        `keep_if_refused` (no client is waiting: a schedule's fire) the run
        stays queued and unpublished instead, for the outbox to publish later.
        A taken Idempotency-Key or fire time raises peewee.IntegrityError.
        """
        found = admission.processor_for_run(self.processors, processor)
        if isinstance(found, Refusal):
            return found
        if refusal := admission.timeout_refusal(found, timeout_seconds):
            return refusal
        fields = {
            **run_fields(found, timeout_seconds),
            "tenant_id": tenant_id,
            "priority": priority,
            "payload": payload,
            "labels": labels or {},
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "schedule_id": schedule_id,
            "scheduled_for": scheduled_for,
        }
        return self._insert_and_publish(fields, keep_if_refused=keep_if_refused)

    def replay(self, original: Run) -> tuple[Run, bool] | Refusal:
        """A new run repeating `original` and whether it was made now; or the Refusal of a replay rule.

        At most one replay per run (a unique index): asking again returns the
        one made before, also when two requests race, and also once its
        processor has been disabled.
        """
        if refusal := admission.replay_refusal(original):
            return refusal
        existing = run_store.find_replay(original.id)
        if existing is not None:
            return existing, False
        if refusal := admission.replay_processor_refusal(self.processors, original):
            return refusal
        fields = {
            "tenant_id": original.tenant_id,
            "processor": original.processor,
            "queue": original.queue,
            "priority": original.priority,
            "payload": original.payload,
            "labels": original.labels,
            "timeout_seconds": original.timeout_seconds,
            "max_attempts": original.max_attempts,
            "replay_of": original.id,
        }
        try:
            return self._insert_and_publish(fields, links=link_to(original.traceparent)), True
        except peewee.IntegrityError:
            existing = run_store.find_replay(original.id)
            if existing is None:
                raise
            return existing, False

    def _insert_and_publish(self, fields: dict, *, keep_if_refused: bool = False, links=()) -> Run:
        """The insert and the publish are spans of the caller's recording span (an API request's, a schedule
        fire's), or of a dockyard.submit span of their own; the run keeps that span's context, which its
        attempts, republishes and replays continue or link to."""
        run_id = run_store.new_run_id()
        attributes = {"dockyard.run_id": run_id, "dockyard.processor": fields["processor"]}
        with (
            submit_span(tracing, attributes, links) as span,
            log_context(run_id=run_id, processor=fields["processor"], tenant=fields.get("tenant_id")),
        ):
            with detail_span(tracing, "dockyard.runs.insert"):
                insert = self.inserts.insert if self.inserts is not None else run_store.create_run
                run = insert(id=run_id, traceparent=traceparent(span), **fields)
            try:
                self.publish(run)
            except QueueUnavailable as exc:
                if keep_if_refused:
                    log.warning("run %s is stored but not yet published (%s); the outbox will publish it", run.id, exc)
                    metrics.run_submitted(run.processor, run.priority)
                    return run
                run_store.withdraw_unpublished(run.id)
                raise
            metrics.run_submitted(run.processor, run.priority)
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
            with log_context(run_id=run.id, processor=run.processor, tenant=run.tenant_id):
                try:
                    self.publish(run, context=context_of(run.traceparent))  # in the run's own trace
                except QueueUnavailable as exc:
                    log.warning("outbox: could not republish run %s: %s", run.id, exc)
                    break
                log.info("outbox: republished run %s (%s)", run.id, run.state)
            count += 1
        self.marks.flush()
        return count


def create_dispatcher(settings: Settings, *, processor_cache_seconds: float = 0, group_commit: bool = False) -> Dispatcher:
    """A dispatcher on a fresh confirming broker (entry points only); processors read at most
    `processor_cache_seconds` ago (the API's submit path: 1 s); `group_commit` for the API's many threads."""
    return Dispatcher(
        create_broker(settings), processors=ProcessorCache(max_age_seconds=processor_cache_seconds), group_commit=group_commit
    )
