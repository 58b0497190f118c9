"""Execute one delivery of a run: take it (or drop it), run one attempt, record the end, and tell
the broker what comes next: nothing, a retry after a backoff, or the dead-letter queue."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from dataclasses import dataclass

import docker
import docker.errors
import dramatiq
import peewee
import requests.exceptions
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from actors import metrics
from actors.containers import ContainerRunner, ContainerSpec, InfrastructureError
from actors.images import ImageRefused, PinnedImages
from actors.outcomes import Verdict, judge
from actors.output import OutputCapture
from actors.retry_policy import INFRASTRUCTURE_OUTCOMES, Decision, RetryPolicy, decide, needs_counts
from settings import Settings
from storage import runs as run_store
from storage.database import database, release_connection
from storage.errors import NotFound
from storage.models import Processor, Run, utcnow
from storage.processors import get_processor
from storage.quotas import OverQuota, QuotaBook, claim
from storage.run_states import AttemptOutcome, RunState, transition
from telemetry.logs import log_context
from telemetry.tracing import context_of, traceparent, tracer

log = logging.getLogger(__name__)
tracing = tracer(__name__)

# How often a running attempt looks for a cancel or a lost lease.
WATCH_SECONDS = 1.0
# A retry delivered this much before its time runs anyway.
EARLY_TOLERANCE_SECONDS = 0.5
# How long the end of an attempt is retried while the database is away.
RECORD_DEADLINE_SECONDS = 300
# A run over a concurrency quota comes back after this long, doubling per
# wait up to the maximum (with jitter, so waiting runs do not move in step).
QUOTA_WAIT_MIN_SECONDS = 1.0
QUOTA_WAIT_MAX_SECONDS = 10.0


class RetryLater(dramatiq.Retry):
    """Hand the message back to the broker to come again after `delay` ms (Dramatiq's Retries does it)."""


class DeadLettered(Exception):
    """Fail the message so RabbitMQ's DLX moves it to the queue's dead-letter queue."""


def is_retried_by_broker(retries: int, exception: BaseException) -> bool:
    """The run actor's `retry_when`: retry what we asked for, and database outages; fail the rest to the DLQ."""
    return isinstance(exception, (RetryLater, peewee.OperationalError, peewee.InterfaceError))


class AttemptWatch:
    """Called by the container runner while an attempt runs: renews the lease, and
    returns a reason to stop if the run was cancelled or taken over by another worker."""

    def __init__(self, run_id: str, number: int, owner: str, lease_seconds: int, shutdown=None, clock=time.monotonic):
        self.run_id, self.number, self.owner = run_id, number, owner
        self.lease_seconds = lease_seconds
        self.shutdown = shutdown
        self.clock = clock
        # Why the watch stopped the attempt: "cancelled", "lease_lost" or "shutdown".
        self.stop_kind: str | None = None
        now = clock()
        self.next_check = now + WATCH_SECONDS
        self.next_renew = now + lease_seconds / 3

    def __call__(self) -> str | None:
        now = self.clock()
        if self.shutdown is not None and self.shutdown.expired():
            self.stop_kind = "shutdown"
            return f"the worker is stopping and its {self.shutdown.grace_seconds:g}s grace period is over; handing the run back"
        try:
            if now >= self.next_renew:
                self.next_renew = now + self.lease_seconds / 3
                until = utcnow() + dt.timedelta(seconds=self.lease_seconds)
                if not run_store.renew_lease(self.run_id, self.number, self.owner, until):
                    if why := self._why_stop():
                        return why
                    self.stop_kind = "lease_lost"
                    return "this worker lost the run's lease"
            if now >= self.next_check:
                self.next_check = now + WATCH_SECONDS
                return self._why_stop()
        except peewee.PeeweeException:
            release_connection()
            log.warning("run %s: could not check the run's state; carrying on", self.run_id, exc_info=True)
        return None

    def _why_stop(self) -> str | None:
        view = run_store.lease_view(self.run_id)
        if view is not None and view[0] == RunState.CANCELLED:
            self.stop_kind = "cancelled"
            return "cancelled by request"
        if view is None or view[0] != RunState.RUNNING or view[1] != self.number or view[2] != self.owner:
            self.stop_kind = "lease_lost"
            return "this worker lost the run (deleted, or taken over by another worker)"
        return None


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended, before it is recorded: the verdict, and what the container left if one ran."""

    verdict: Verdict
    container_id: str | None = None
    exit_code: int | None = None
    result: object = None  # the DOCKYARD_RESULT value, if the processor printed one
    cpu_seconds: float | None = None  # what the container used, where measured
    peak_memory_bytes: int | None = None


@dataclass
class Executor:
    settings: Settings
    client: docker.DockerClient
    runner: ContainerRunner
    worker_name: str
    shutdown: object | None = None  # actors.shutdown.GracefulShutdown in a real worker
    quotas: QuotaBook | None = None

    def __post_init__(self):
        if self.quotas is None:
            self.quotas = QuotaBook(self.settings.tenant_max_running)
        self.images = PinnedImages(self.client)

    def execute(self, run_id: str, options: dict | None = None) -> None:
        """Handle one delivery of `run_id`; raise RetryLater or DeadLettered to route the message.

        `options` are the message's own options: what is written there travels
        with the message when it is retried.
        """
        options = {} if options is None else options
        run = Run.get_or_none(Run.id == run_id)
        if run is None:
            log.warning("run %s does not exist; dropping its message", run_id, extra={"run_id": run_id})
            return
        with log_context(run_id=run.id, processor=run.processor, tenant=run.tenant_id):
            self._deliver(run, options)

    def _deliver(self, run: Run, options: dict) -> None:
        run_id = run.id
        if run.state == RunState.DEAD_LETTER:
            # Dead-lettered, but this message never reached the DLQ (a worker died in between).
            raise DeadLettered(f"run {run_id} is dead-lettered")
        if run.state == RunState.RUNNING:
            run = self._check_lease(run, options)
            if run is None:
                return
        if run.state == RunState.RETRYING:
            wait = (run.next_attempt_at - utcnow()).total_seconds() if run.next_attempt_at else 0
            if wait > EARLY_TOLERANCE_SECONDS:
                raise RetryLater(f"run {run_id} is not due yet", delay=int(wait * 1000))
            if transition(run_id, RunState.QUEUED, reason="retry_due", next_attempt_at=None) is None:
                log.info("run %s left retrying meanwhile; dropping this delivery", run_id)
                return
        elif run.state != RunState.QUEUED:
            log.info("run %s is %s; dropping this delivery", run_id, run.state)
            return
        self._claim_then_attempt(run, options)

    def _check_lease(self, run: Run, options: dict) -> Run | None:
        """A delivery for a running run: wait out a live lease, take over an expired one.

        A live lease may belong to a worker that just died (its message comes
        back at once) or to one still working (the delivery is a duplicate).
        So the first look notes the lease and comes back when it ends; a
        lease renewed by then has a live holder, and the delivery is dropped.
        """
        now = utcnow()
        if run.lease_expires_at is not None and run.lease_expires_at > now:
            seen, current = options.get("lease_seen"), run.lease_expires_at.isoformat()
            if seen is not None and seen != current:
                log.info("run %s is held by live worker %s; dropping this delivery", run.id, run.lease_owner)
                return None
            options["lease_seen"] = current
            delay = (run.lease_expires_at - now).total_seconds() + 1
            raise RetryLater(f"run {run.id} is held by {run.lease_owner} until {current}", delay=int(delay * 1000))
        number = run.attempts
        message = f"worker {run.lease_owner} stopped renewing its lease during attempt {number}"
        log.warning("run %s: %s; taking it over", run.id, message)
        run_store.end_lost_attempt(run.id, number, message)
        try:
            removed = self.runner.remove_run_containers(run.id)
            if removed:
                log.info("run %s: removed %d container(s) the lost worker left", run.id, len(removed))
        except (docker.errors.APIError, requests.exceptions.RequestException):
            log.warning("run %s: could not remove the lost worker's containers", run.id, exc_info=True)
        decision = self._decide(
            run, Verdict(AttemptOutcome.WORKER_LOST, RunState.FAILED, AttemptOutcome.WORKER_LOST, message), exit_code=None
        )
        recorded = self._record_end(run.id, number, decision, exit_code=None, result=None)
        metrics.attempt_ended(run.processor, AttemptOutcome.WORKER_LOST, decision.run_state if recorded else None, _since(run.started_at))
        if not recorded:
            return None
        if decision.run_state == RunState.DEAD_LETTER:
            raise DeadLettered(decision.message)
        return Run.get_by_id(run.id)

    def _claim_then_attempt(self, run: Run, options: dict) -> None:
        """Claim a queued run (its `attempts` as read; the claim is fenced on it), then make one attempt.

        A run whose tenant or processor is at its concurrency quota stays
        queued: its message comes back later (RetryLater), waits counted in
        the message's options for the backoff.
        """
        run_id = run.id
        number = run.attempts + 1
        try:
            processor = get_processor(run.processor)  # as stored now: this attempt runs with it
        except NotFound:
            processor = None  # refused once claimed, with the reason recorded
        now = utcnow()
        waits = options.get("quota_waits", 0)
        delay = min(QUOTA_WAIT_MIN_SECONDS * 2**waits, QUOTA_WAIT_MAX_SECONDS) * random.uniform(0.75, 1.0)
        # A missing or disabled processor's run is refused once claimed: it waits for no quota.
        quotas = self.quotas.for_run(run, processor.concurrency) if processor is not None and processor.enabled else []
        try:
            claimed = claim(
                run_id,
                quotas,
                wait_until=now + dt.timedelta(seconds=delay),
                expected_attempt=run.attempts,
                attempts=number,
                started_at=run.started_at or now,
                next_attempt_at=None,
                lease_owner=self.worker_name,
                lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds),
            )
        except OverQuota as exc:
            options["quota_waits"] = waits + 1
            log.info("run %s waits: %s; trying again in %.1fs", run_id, exc, delay)
            metrics.QUOTA_WAITS.labels(quota=exc.quota.kind).inc()
            raise RetryLater(f"run {run_id} waits: {exc}", delay=int(delay * 1000)) from None
        options.pop("quota_waits", None)  # a later wait (after a retry) starts short again
        if claimed is None:
            log.info("run %s is no longer queued; dropping this delivery", run_id)
            return
        if number == 1:
            metrics.PICKUP.labels(processor=run.processor, priority=run.priority).observe(max(0.0, (now - run.created_at).total_seconds()))
        # The attempt continues the trace of the message's publish (or, for a message without one, the run's).
        parent = context_of(options.get("traceparent")) or context_of(run.traceparent)
        with (
            tracing.start_as_current_span(
                "dockyard.attempt",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                attributes={"dockyard.run_id": run_id, "dockyard.attempt": number, "dockyard.processor": run.processor},
                record_exception=False,
                set_status_on_exception=False,  # RetryLater and DeadLettered route the message; they are not the span's error
            ),
            log_context(attempt=number),
        ):
            metrics.THREADS_BUSY.inc()
            try:
                self._attempt_claimed(run, number, processor, run.started_at or now)
            finally:
                metrics.THREADS_BUSY.dec()

    def _attempt_claimed(self, run: Run, number: int, processor: Processor | None, run_started_at: dt.datetime) -> None:
        """Make attempt `number` of a run this worker holds: its row, its container, its recorded end,
        and the message's next step (RetryLater, DeadLettered, or done)."""
        run_id = run.id
        span = trace.get_current_span()
        log.info("run %s attempt %d started", run_id, number)
        attempt = run_store.start_attempt(run_id, number, self.worker_name)
        capture = OutputCapture(
            lambda text: run_store.append_log(run_id, number, text),
            max_log_bytes=self.settings.max_log_bytes,
            max_result_bytes=self.settings.max_result_bytes,
            tail_bytes=self.settings.log_tail_bytes,
        )
        watch = AttemptWatch(run_id, number, self.worker_name, self.settings.lease_seconds, self.shutdown)
        ended = self._container_result(run, processor, number, attempt.id, capture, watch)
        decision = self._persist(
            lambda: self._finish(run, number, attempt.id, ended, capture, processor),
            what=f"the end of run {run_id} attempt {number}",
        )
        outcome = ended.verdict.attempt_outcome
        metrics.attempt_ended(run.processor, outcome, decision.run_state if decision else None, _since(run_started_at))
        span.set_attribute("dockyard.attempt.outcome", outcome)
        if outcome != AttemptOutcome.SUCCEEDED:
            span.set_status(Status(StatusCode.ERROR, ended.verdict.message))
        if decision is None:
            log.info("run %s attempt %d ended %s; the run was cancelled or taken over meanwhile", run_id, number, outcome)
            return
        span.set_attribute("dockyard.run.state", decision.run_state)
        log.info("run %s attempt %d ended %s; the run is %s", run_id, number, outcome, decision.run_state)
        if decision.run_state == RunState.RETRYING:
            raise RetryLater(f"run {run_id}: {decision.message}", delay=int(decision.delay_seconds * 1000))
        if decision.run_state == RunState.DEAD_LETTER:
            raise DeadLettered(f"run {run_id}: {decision.message}")

    def _finish(
        self, run: Run, number: int, attempt_id: int, ended: AttemptEnd, capture: OutputCapture, processor: Processor | None
    ) -> Decision | None:
        """The attempt's end in one transaction: its last output, the attempt row (and the run's usage totals),
        and the run's next state. If it fails, nothing of it is written and the output is kept for the retry."""
        text = capture.take_pending()
        try:
            with database.atomic():
                if text:
                    run_store.append_log(run.id, number, text)
                run_store.finish_attempt(
                    attempt_id,
                    outcome=ended.verdict.attempt_outcome,
                    exit_code=ended.exit_code,
                    container_id=ended.container_id,
                    log_tail=capture.tail,
                    cpu_seconds=ended.cpu_seconds,
                    peak_memory_bytes=ended.peak_memory_bytes,
                    run_id=run.id,
                )
                # The retry policy of the processor this attempt ran with (read when it was claimed).
                retry = processor.retry if processor is not None else {}
                decision = self._decide(run, ended.verdict, exit_code=ended.exit_code, retry=retry)
                if not self._record_end(run.id, number, decision, exit_code=ended.exit_code, result=ended.result):
                    return None  # cancelled meanwhile, or taken over: the other writer won
        except BaseException:
            capture.put_back(text)
            raise
        return decision

    def _decide(self, run: Run, verdict: Verdict, *, exit_code: int | None, retry: dict | None = None) -> Decision:
        """What comes after this attempt; `retry`: the processor's policy, read now when not given."""
        if retry is None:
            try:
                retry = get_processor(run.processor).retry
            except NotFound:
                retry = {}
        processor_attempts, infrastructure_failures = (
            run_store.attempt_counts(run.id, INFRASTRUCTURE_OUTCOMES) if needs_counts(verdict) else (0, 0)
        )
        return decide(
            verdict,
            exit_code=exit_code,
            policy=RetryPolicy.from_processor(retry, run.max_attempts),
            processor_attempts=processor_attempts,
            infrastructure_failures=infrastructure_failures,
            infrastructure_retries=self.settings.infrastructure_retries,
        )

    def _record_end(self, run_id, number, decision: Decision, *, exit_code, result) -> bool:
        """Write the run's state after attempt `number`; False if another writer got there first."""
        fields = {
            "exit_code": exit_code,
            "error_reason": decision.reason,
            "error_message": decision.message,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        message = decision.message
        if decision.run_state == RunState.RETRYING:
            fields["next_attempt_at"] = utcnow() + dt.timedelta(seconds=decision.delay_seconds)
            message = f"{decision.message}; retrying in {decision.delay_seconds:.1f}s"
        else:
            fields["finished_at"] = utcnow()
            fields["result"] = result
        if decision.run_state == RunState.SUCCEEDED:
            fields["error_reason"] = fields["error_message"] = None
        left = transition(run_id, decision.run_state, reason=decision.reason, message=message, expected_attempt=number, **fields)
        return left is not None

    def _persist(self, write, *, what: str):
        """Run `write`, retrying while the database is unreachable: the attempt's end exists only in memory."""
        deadline = time.monotonic() + RECORD_DEADLINE_SECONDS
        delay = 0.5
        while True:
            try:
                return write()
            except (peewee.OperationalError, peewee.InterfaceError):
                release_connection()  # a connection the server cut stays cut: take a new one
                if time.monotonic() > deadline:
                    raise
                log.warning("could not record %s; retrying in %.1fs", what, delay, exc_info=True)
                time.sleep(delay)
                delay = min(delay * 2, 10)

    def _container_result(
        self, run: Run, processor: Processor | None, number: int, attempt_id: int, capture: OutputCapture, watch: AttemptWatch
    ) -> AttemptEnd:
        """Check the processor and its image, run the container, and say how the attempt ended (no database write
        but the container id and the log). `processor` None: it is no longer registered."""
        if processor is None:
            return self._refused(run, capture, "processor_missing", str(NotFound("processor", run.processor)))
        if not processor.enabled:
            # Off the allowlist since the run was accepted (a manifest no longer lists it).
            return self._refused(
                run, capture, "processor_disabled", f"processor {processor.name!r} is disabled; its queued runs are refused"
            )
        try:
            image_id = self.images.image_id(processor.image)
        except ImageRefused as exc:
            return self._refused(run, capture, "image_refused", str(exc))
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return AttemptEnd(self._infrastructure_failure(run, capture, exc))
        with tracing.start_as_current_span(
            "dockyard.container", attributes={"container.image.name": processor.image, "container.image.id": image_id}
        ) as span:
            ended = self._run_container(run, processor, image_id, number, attempt_id, capture, watch)
            if ended.verdict.attempt_outcome == AttemptOutcome.INFRASTRUCTURE_ERROR:
                self.images.forget(processor.image)  # the image may be what vanished: check it again next time
            span.set_attribute("dockyard.attempt.outcome", ended.verdict.attempt_outcome)
            if ended.container_id:
                span.set_attribute("container.id", ended.container_id)
            if ended.exit_code is not None:
                span.set_attribute("process.exit.code", ended.exit_code)
            if ended.verdict.attempt_outcome != AttemptOutcome.SUCCEEDED:
                span.set_status(Status(StatusCode.ERROR, ended.verdict.message))
            return ended

    def _run_container(
        self, run: Run, processor: Processor, image_id: str, number: int, attempt_id: int, capture: OutputCapture, watch: AttemptWatch
    ) -> AttemptEnd:
        """Run the attempt's container inside the current (container) span, whose context the container gets as TRACEPARENT."""
        context = traceparent()
        spec = ContainerSpec(
            image_id=image_id,
            command=processor.command,
            env={
                **(processor.env or {}),
                "DOCKYARD_RUN_ID": run.id,
                "DOCKYARD_ATTEMPT": str(number),
                "DOCKYARD_PROCESSOR": run.processor,
                **({"TRACEPARENT": context} if context else {}),
            },
            labels={
                "dockyard.run_id": run.id,
                "dockyard.attempt": str(number),
                "dockyard.worker": self.worker_name,
                "dockyard.processor": run.processor,
            },
            cpus=processor.cpus,
            memory_mb=processor.memory_mb,
            pids=processor.pids,
            network=processor.network,
            timeout_seconds=run.timeout_seconds,
            payload=json.dumps(run.payload, separators=(",", ":")).encode() + b"\n",
            user=self.settings.container_user,
            tmpfs_mb=self.settings.container_tmpfs_mb,
        )
        try:
            outcome = self.runner.run(
                spec,
                capture,
                on_created=lambda cid: self._note_container(attempt_id, cid),
                should_stop=watch,
            )
        except InfrastructureError as exc:
            return AttemptEnd(self._infrastructure_failure(run, capture, exc))
        except Exception as exc:
            # A bug must not leave the run "running" forever: record it and move on.
            log.exception("run %s: unexpected error in the container runner", run.id)
            return AttemptEnd(self._infrastructure_failure(run, capture, exc))
        if outcome.start_seconds is not None:
            metrics.CONTAINER_START.labels(processor=run.processor).observe(outcome.start_seconds)
        verdict = judge(outcome, timeout_seconds=run.timeout_seconds, memory_mb=processor.memory_mb)
        if outcome.stopped and watch.stop_kind == "shutdown":
            # Not the processor's doing: retried like a lost worker.
            verdict = Verdict(AttemptOutcome.WORKER_LOST, RunState.FAILED, "worker_shutdown", outcome.stopped)
        result, problem = capture.result()
        if problem:
            capture.note(problem)
        if outcome.cpu_seconds is not None:
            metrics.ATTEMPT_CPU.labels(processor=run.processor).observe(outcome.cpu_seconds)
        if outcome.peak_memory_bytes is not None:
            metrics.ATTEMPT_MEMORY.labels(processor=run.processor).observe(outcome.peak_memory_bytes)
        return AttemptEnd(verdict, outcome.container_id, outcome.exit_code, result, outcome.cpu_seconds, outcome.peak_memory_bytes)

    def _note_container(self, attempt_id: int, container_id: str) -> None:
        """Record the container early, for operators; the attempt's end records it again."""
        try:
            run_store.set_attempt_container(attempt_id, container_id)
        except peewee.PeeweeException:
            log.warning("could not record container %s of attempt %s yet", container_id[:12], attempt_id, exc_info=True)

    def _refused(self, run: Run, capture: OutputCapture, reason: str, message: str) -> AttemptEnd:
        """An attempt that started no container: a failure no retry can fix (actors/retry_policy.py)."""
        capture.note(f"refused: {message}")
        log.error("run %s refused: %s", run.id, message)
        return AttemptEnd(Verdict(AttemptOutcome.FAILED, RunState.FAILED, reason, message))

    def _infrastructure_failure(self, run: Run, capture: OutputCapture, exc: Exception) -> Verdict:
        capture.note(f"infrastructure error: {exc}")
        log.error("run %s: infrastructure error: %s", run.id, exc)
        return Verdict(AttemptOutcome.INFRASTRUCTURE_ERROR, RunState.FAILED, AttemptOutcome.INFRASTRUCTURE_ERROR, str(exc))


def _since(moment: dt.datetime | None) -> float | None:
    """Seconds from `moment` (naive UTC) to now, or None."""
    return None if moment is None else max(0.0, (utcnow() - moment).total_seconds())
