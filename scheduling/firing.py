"""Turn a schedule's due fire times into runs, skips and records: the one place cron fires happen.

The database says what is due: a schedule's `next_fire_at` is its first fire
time not yet handled, and every handled time moves it on. Each fire is a run
with a unique `(schedule_id, scheduled_for)`, so a second leader (or a
restarted one) firing the same time finds the run already made.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import peewee
from opentelemetry import context as otel_context

from actors.admission import Refusal
from actors.dispatch import Dispatcher
from scheduling import metrics
from scheduling.decisions import ON_TIME_SECONDS, REPLACE, SKIP, plan_catchup
from scheduling.decisions import overlap_action as decide_overlap
from storage import runs as run_store
from storage import schedules as schedule_store
from storage.cron import fires_between
from storage.errors import Conflict, NotFound
from storage.models import Schedule, utcnow
from storage.schedules import FireKind
from telemetry.logs import log_context
from telemetry.tracing import tracer

log = logging.getLogger(__name__)
tracing = tracer(__name__)

# Fire times listed at most when catching up a long gap (the rest are counted as missed in one record).
MAX_LISTED_FIRES = 10_000


def due_fire_times(schedule: Schedule, now: dt.datetime) -> list[dt.datetime]:
    """The schedule's fire times from its `next_fire_at` up to `now`, oldest first."""
    start = schedule.next_fire_at - dt.timedelta(microseconds=1)
    due = fires_between(schedule.cron, schedule.timezone, start, now, limit=MAX_LISTED_FIRES)
    if len(due) == MAX_LISTED_FIRES:
        # A very long gap: the times near `now` matter (one of them may fire); the rest are missed anyway.
        recent_from = max(due[-1], now - dt.timedelta(seconds=schedule.catchup_window_seconds + ON_TIME_SECONDS + 60))
        due += fires_between(schedule.cron, schedule.timezone, recent_from, now, limit=MAX_LISTED_FIRES)
    return due


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Firer:
    """Handles the due fire times of schedules; safe to call from several threads."""

    def __init__(self, dispatcher: Dispatcher, clock=utcnow):
        self.dispatcher = dispatcher
        self.clock = clock
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    def fire_due(self, schedule_id: str, now: dt.datetime | None = None) -> list[tuple[str, dt.datetime]]:
        """Handle every due fire time of one schedule; return (kind, fire time) of what was recorded.

        A schedule already being handled by another thread is left to it.
        """
        with self._busy_lock:
            if schedule_id in self._busy:
                return []
            self._busy.add(schedule_id)
        try:
            with log_context(schedule_id=schedule_id):
                return self._fire_due(schedule_id, now or self.clock())
        finally:
            with self._busy_lock:
                self._busy.discard(schedule_id)

    def _fire_due(self, schedule_id: str, now: dt.datetime) -> list[tuple[str, dt.datetime]]:
        schedule = Schedule.get_or_none(Schedule.id == schedule_id)
        if schedule is None or schedule.paused or schedule.next_fire_at is None or schedule.next_fire_at > now:
            return []
        plan = plan_catchup(due_fire_times(schedule, now), now, schedule.catchup_window_seconds)
        done: list[tuple[str, dt.datetime]] = []
        if plan.missed:
            why = f"outside the catch-up window ({schedule.catchup_window_seconds}s): no scheduler led then"
            done += self._record_skipped(schedule, plan.missed, why)
        if plan.coalesced:
            done += self._record_skipped(schedule, plan.coalesced, f"coalesced into the fire at {_iso(plan.fire)}")
        if plan.fire is not None:
            done += self._fire(schedule, plan.fire, late=(now - plan.fire).total_seconds() > ON_TIME_SECONDS)
        return done

    def _record_skipped(self, schedule: Schedule, times: list[dt.datetime], why: str) -> list[tuple[str, dt.datetime]]:
        first, last = times[0], times[-1]
        span = _iso(first) if first == last else f"{len(times)} fire times from {_iso(first)} to {_iso(last)}"
        if not schedule_store.record_fire(schedule, first, FireKind.MISSED, message=f"{span}: {why}", through=last):
            return []
        metrics.SKIPS.labels("missed").inc(len(times))
        log.warning("schedule %s (%s): %s not fired: %s", schedule.name, schedule.id, span, why)
        return [(FireKind.MISSED, first)]

    def _fire(self, schedule: Schedule, at: dt.datetime, *, late: bool) -> list[tuple[str, dt.datetime]]:
        """One fire time: a trace of its own (the run it makes continues it)."""
        attributes = {"dockyard.schedule_id": schedule.id, "dockyard.schedule.fire_time": _iso(at), "dockyard.schedule.late": late}
        with tracing.start_as_current_span("dockyard.schedule.fire", context=otel_context.Context(), attributes=attributes) as span:
            done = self._fire_at(schedule, at, late=late)
            span.set_attribute("dockyard.schedule.fire_kinds", sorted({kind for kind, _ in done}))
            return done

    def _fire_at(self, schedule: Schedule, at: dt.datetime, *, late: bool) -> list[tuple[str, dt.datetime]]:
        fired = FireKind.FIRED
        existing = schedule_store.run_of_fire(schedule.id, at)
        if existing is not None:  # fired by another leader (or by us before a crash): just record it
            schedule_store.record_fire(schedule, at, fired, run_id=existing.id, message="already fired")
            return [(fired, at)]
        if refusal := self.dispatcher.refusal(schedule.processor):  # before overlap: replace must not cancel for nothing
            return self._not_fired(schedule, at, refusal)
        done = []
        # NOTE: a run made for this very fire time (by another leader, since our
        # look above) is not an earlier run to skip for or to replace: the insert
        # below meets it on the unique index.
        active = [run for run in schedule_store.active_runs(schedule.id) if run.scheduled_for != at]
        action = decide_overlap(schedule.overlap, bool(active))
        if action == SKIP:
            why = f"run {active[0].id} of this schedule has not ended ({active[0].state}); overlap is forbid"
            if schedule_store.record_fire(schedule, at, FireKind.SKIPPED_OVERLAP, run_id=active[0].id, message=why):
                metrics.SKIPS.labels("overlap").inc()
                log.info("schedule %s: fire at %s skipped: %s", schedule.name, _iso(at), why)
            return [(FireKind.SKIPPED_OVERLAP, at)]
        if action == REPLACE:
            for run in active:
                why = f"replaced by the fire at {_iso(at)} (overlap is replace)"
                try:
                    run_store.cancel(run.id, why=why)
                except (Conflict, NotFound):
                    continue  # it ended meanwhile
                schedule_store.record_fire(schedule, at, FireKind.REPLACED, run_id=run.id, message=why)
                done.append((FireKind.REPLACED, at))

        try:
            run = self.dispatcher.submit(**schedule_store.fire_submission(schedule), scheduled_for=at, keep_if_refused=True)
        except peewee.IntegrityError:
            # NOTE: the fence. Another leader made this fire's run between our look and our insert.
            run = schedule_store.run_of_fire(schedule.id, at)
            if run is None:
                raise
        if isinstance(run, Refusal):  # the processor was disabled since the look above
            return done + self._not_fired(schedule, at, run)
        message = "late, within the catch-up window" if late else None
        if schedule_store.record_fire(schedule, at, fired, run_id=run.id, message=message):
            metrics.FIRES.labels("catchup" if late else "cron").inc()
            log.info("schedule %s fired run %s for %s%s", schedule.name, run.id, _iso(at), " (late)" if late else "")
        done.append((fired, at))
        return done

    def _not_fired(self, schedule: Schedule, at: dt.datetime, refusal: Refusal) -> list[tuple[str, dt.datetime]]:
        if schedule_store.record_fire(schedule, at, FireKind.NOT_FIRED, message=refusal.message):
            metrics.SKIPS.labels("not_fired").inc()
            log.warning("schedule %s: fire at %s not made: %s", schedule.name, _iso(at), refusal.message)
        return [(FireKind.NOT_FIRED, at)]
