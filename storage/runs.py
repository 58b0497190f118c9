"""Runs, their attempts, events and logs: creating and reading them.

State changes go through storage.run_states.transition, never through here.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import operator
import uuid

from peewee import Case, Tuple, fn

from storage.database import database, is_postgres, set_clause
from storage.errors import Conflict, InvalidSpec, NotFound
from storage.metrics import RUNS_CANCELLED
from storage.models import Run, RunAttempt, RunEvent, RunLogChunk, utcnow
from storage.run_states import TERMINAL, AttemptOutcome, RunState, insert_queued, transition

MAX_PAGE = 200


def new_run_id() -> str:
    return uuid.uuid4().hex


def create_run(**fields) -> Run:
    """Insert a queued run and its creation event in one transaction."""
    fields.setdefault("id", new_run_id())
    return insert_queued(**fields)


def mark_published(run_ids: list[str]) -> int:
    """Record that the broker confirmed these runs' messages; return how many rows changed."""
    if not run_ids:
        return 0
    return Run.update(published_at=utcnow()).where(Run.id.in_(run_ids) & Run.published_at.is_null()).execute()


def withdraw_unpublished(run_id: str) -> bool:
    """Delete a run whose publish was refused, if it is still untouched; True if deleted."""
    with database.atomic():
        still_fresh = Run.select().where((Run.id == run_id) & (Run.state == RunState.QUEUED) & Run.published_at.is_null())
        if not still_fresh.exists():
            return False
        RunEvent.delete().where(RunEvent.run == run_id).execute()
        return Run.delete().where(Run.id == run_id).execute() == 1


def runs_to_republish(
    now: dt.datetime,
    *,
    unpublished_grace: float | None,
    lease_grace: float | None,
    retry_grace: float | None,
    limit: int = 500,
) -> list[Run]:
    """Runs whose message may be lost: never published, holding a long-expired lease, or long overdue
    for a retry or a quota wait (each looked for unless its grace is None)."""
    conditions = []
    if unpublished_grace is not None:
        since = now - dt.timedelta(seconds=unpublished_grace)
        conditions.append((Run.state == RunState.QUEUED) & Run.published_at.is_null() & (Run.created_at < since))
    if lease_grace is not None:
        conditions.append((Run.state == RunState.RUNNING) & (Run.lease_expires_at < now - dt.timedelta(seconds=lease_grace)))
    if retry_grace is not None:
        # retrying, or queued and handed back to wait for a concurrency quota (storage.quotas)
        overdue = Run.next_attempt_at < now - dt.timedelta(seconds=retry_grace)
        conditions.append(Run.state.in_((RunState.RETRYING, RunState.QUEUED)) & overdue)
    if not conditions:
        return []
    return list(Run.select().where(functools.reduce(operator.or_, conditions)).order_by(Run.created_at).limit(limit))


def dead_lettered_runs(
    *, tenant_id: str | None = None, processor: str | None = None, since: dt.datetime | None = None, limit: int = 1000
) -> list[Run]:
    """Runs that ended dead_letter (of one tenant, or of all), newest first."""
    query = Run.select().where(Run.state == RunState.DEAD_LETTER)
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    if processor:
        query = query.where(Run.processor == processor)
    if since:
        query = query.where(Run.finished_at >= since)
    return list(query.order_by(Run.finished_at.desc()).limit(limit))


def find_by_idempotency_key(tenant_id: str | None, key: str) -> Run | None:
    query = Run.select().where(Run.idempotency_key == key)
    query = query.where(Run.tenant_id.is_null() if tenant_id is None else Run.tenant_id == tenant_id)
    return query.first()


def find_replay(run_id: str) -> Run | None:
    """The run that replays `run_id`, if there is one (at most one: a unique index)."""
    return Run.select().where(Run.replay_of == run_id).first()


def cancel(run_id: str, tenant_id: str | None = None, why: str = "cancelled by request") -> Run:
    """Cancel a queued, retrying or running run and return it; Conflict if it has already ended.

    A running run's worker sees the state within a second and kills its container.
    """
    for _ in range(5):
        run = get_run(run_id, tenant_id)
        if run.state in TERMINAL:
            raise Conflict(f"run {run_id} has already ended ({run.state})")
        left = transition(
            run_id, RunState.CANCELLED, reason="cancelled", message=why, finished_at=utcnow(), error_reason="cancelled", error_message=why
        )
        if left is not None:
            RUNS_CANCELLED.labels(processor=run.processor).inc()
            return get_run(run_id)
        # It changed state under us (say queued -> running): look again.
    raise Conflict(f"run {run_id} kept changing state; try again")


def get_run(run_id: str, tenant_id: str | None = None) -> Run:
    query = Run.select().where(Run.id == run_id)
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    run = query.first()
    if run is None:
        raise NotFound("run", run_id)
    return run


def encode_cursor(run: Run) -> str:
    raw = f"{run.created_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, run_id = raw.split("|", 1)
        return dt.datetime.fromisoformat(created), run_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidSpec([("cursor", "is not a cursor this API returned")]) from None


def runs_query(
    *,
    tenant_id: str | None = None,
    state: str | None = None,
    processor: str | None = None,
    schedule_id: str | None = None,
    priority: str | None = None,
    created_since: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    after: tuple[dt.datetime, str] | None = None,
):
    """The runs that match, newest first, from just after the (created_at, id) key `after`.

    Every filter the API and the console offer has an index whose last two
    columns are (created_at, id) after the tenant (migration 12), so a page
    is a short walk of one index whatever the history's size; the key is
    compared as a row value so that the walk starts at it.
    """
    query = Run.select()
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    if state:
        query = query.where(Run.state == state)
    if priority:
        query = query.where(Run.priority == priority)
    if created_since is not None:
        query = query.where(Run.created_at >= created_since)
    if created_before is not None:
        query = query.where(Run.created_at < created_before)
    if processor:
        query = query.where(Run.processor == processor)
    if schedule_id:
        query = query.where(Run.schedule_id == schedule_id)
    if after is not None:
        query = query.where(Tuple(Run.created_at, Run.id) < Tuple(*after))
    return query.order_by(Run.created_at.desc(), Run.id.desc())


def list_runs(
    *,
    labels: dict[str, str] | None = None,
    limit: int = 50,
    cursor: str | None = None,
    **filters,
) -> tuple[list[Run], str | None]:
    """Newest first, keyset-paginated; return the page and the next cursor. `filters`: those of `runs_query`."""
    after = decode_cursor(cursor) if cursor else None
    items: list[Run] = []
    # Label filters are matched in Python (labels are a JSON column on both databases), in keyset batches.
    batch = max(limit + 1, 100) if labels else limit + 1
    while len(items) <= limit:
        rows = list(runs_query(after=after, **filters).limit(batch))
        for run in rows:
            if not labels or all((run.labels or {}).get(k) == v for k, v in labels.items()):
                items.append(run)
                if len(items) > limit:
                    break
        if len(rows) < batch:
            break
        after = (rows[-1].created_at, rows[-1].id)
    next_cursor = encode_cursor(items[limit - 1]) if len(items) > limit else None
    return items[:limit], next_cursor


def list_attempts(run_id: str) -> list[RunAttempt]:
    return list(RunAttempt.select().where(RunAttempt.run == run_id).order_by(RunAttempt.number))


def last_log_tails(run_ids: list[str]) -> dict[str, str]:
    """The log tail of each run's last attempt that has one, by run id (one query)."""
    if not run_ids:
        return {}
    rows = (
        RunAttempt.select(RunAttempt.run, RunAttempt.number, RunAttempt.log_tail)
        .where(RunAttempt.run.in_(run_ids) & RunAttempt.log_tail.is_null(False))
        .order_by(RunAttempt.run, RunAttempt.number)
    )
    return {row.run_id: row.log_tail for row in rows}  # the last attempt of each run wins


def list_events(run_id: str) -> list[RunEvent]:
    return list(RunEvent.select().where(RunEvent.run == run_id).order_by(RunEvent.id))


def start_attempt(run_id: str, number: int, worker: str) -> RunAttempt:
    return RunAttempt.create(run=run_id, number=number, worker=worker, started_at=utcnow())


def finish_attempt(
    attempt_id: int,
    *,
    run_id: str,
    outcome: str,
    exit_code: int | None,
    container_id: str | None,
    log_tail: str | None,
    cpu_seconds: float | None = None,
    peak_memory_bytes: int | None = None,
) -> bool:
    """Record an attempt (of run `run_id`)'s end, unless it was already ended (e.g. as worker_lost); True if
    recorded. What its container used is added to the run's totals in the same transaction."""
    changes = {
        "outcome": outcome,
        "exit_code": exit_code,
        "log_tail": log_tail,
        "finished_at": utcnow(),
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": peak_memory_bytes,
    }
    if container_id is not None:
        changes["container_id"] = container_id
    if is_postgres(database.obj):
        return _finish_attempt_postgres(attempt_id, run_id, changes)
    with database.atomic():
        recorded = RunAttempt.update(changes).where((RunAttempt.id == attempt_id) & RunAttempt.finished_at.is_null()).execute() == 1
        if recorded and (cpu_seconds is not None or peak_memory_bytes is not None):
            totals = {}
            if cpu_seconds is not None:
                totals[Run.cpu_seconds] = fn.COALESCE(Run.cpu_seconds, 0) + cpu_seconds
            if peak_memory_bytes is not None:
                totals[Run.peak_memory_bytes] = Case(
                    None,
                    [((Run.peak_memory_bytes.is_null()) | (Run.peak_memory_bytes < peak_memory_bytes), peak_memory_bytes)],
                    Run.peak_memory_bytes,
                )
            Run.update(totals).where(Run.id == run_id).execute()
    return recorded


def _finish_attempt_postgres(attempt_id: int, run_id: str, changes: dict) -> bool:
    """finish_attempt in one statement (one round trip, atomic on its own): the attempt's end, and the run's
    totals updated only if this statement ended the attempt."""
    set_sql, params = set_clause(RunAttempt, changes)
    totals, totals_params = [], []
    if changes["cpu_seconds"] is not None:
        totals.append("cpu_seconds = COALESCE(runs.cpu_seconds, 0) + %s")
        totals_params.append(changes["cpu_seconds"])
    if changes["peak_memory_bytes"] is not None:
        totals.append("peak_memory_bytes = GREATEST(runs.peak_memory_bytes, %s)")  # GREATEST skips a NULL
        totals_params.append(changes["peak_memory_bytes"])
    sql = f"WITH ended AS (UPDATE run_attempts SET {set_sql} WHERE id = %s AND finished_at IS NULL RETURNING id)"
    params.append(attempt_id)
    if totals:
        sql += f", added AS (UPDATE runs SET {', '.join(totals)} WHERE id = %s AND EXISTS (SELECT 1 FROM ended))"
        params += [*totals_params, run_id]
    return database.execute_sql(f"{sql} SELECT count(*) FROM ended", params).fetchone()[0] == 1


def end_lost_attempt(run_id: str, number: int, message: str) -> bool:
    """Mark attempt `number` of a run as worker_lost if nobody ended it; True if it was open."""
    return (
        RunAttempt.update(outcome=AttemptOutcome.WORKER_LOST, finished_at=utcnow(), log_tail=message)
        .where((RunAttempt.run == run_id) & (RunAttempt.number == number) & RunAttempt.finished_at.is_null())
        .execute()
        == 1
    )


def attempt_counts(run_id: str, infrastructure_outcomes: frozenset[str]) -> tuple[int, int]:
    """(attempts that reached the processor, attempts the engine failed) of a run so far."""
    outcomes = [a.outcome for a in RunAttempt.select(RunAttempt.outcome).where(RunAttempt.run == run_id)]
    infrastructure = sum(1 for o in outcomes if o in infrastructure_outcomes)
    return len(outcomes) - infrastructure, infrastructure


def queued_by_priority(tenant_id: str | None = None) -> dict[str, tuple[int, dt.datetime]]:
    """priority -> (runs queued, when the oldest was created), for the priorities that have queued runs
    (of one tenant, or of all)."""
    query = Run.select(Run.priority, fn.COUNT(Run.id).alias("n"), fn.MIN(Run.created_at).alias("oldest")).where(
        Run.state == RunState.QUEUED
    )
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    return {priority: (count, _as_datetime(oldest)) for priority, count, oldest in query.group_by(Run.priority).tuples()}


def ended_since(since: dt.datetime) -> dict[str, int]:
    """state -> how many runs (of every tenant) ended at or after `since` (the finished_at index answers it)."""
    query = Run.select(Run.state, fn.COUNT(Run.id)).where(Run.finished_at >= since).group_by(Run.state)
    return dict(query.tuples())


def count_runs(state: str, *, tenant_id: str | None = None) -> int:
    """How many runs (of one tenant, or of all) are in `state` now (an index on state answers it)."""
    query = Run.select().where(Run.state == state)
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    return query.count()


def runs_by_state(*, tenant_id: str | None = None, since: dt.datetime | None = None) -> dict[str, int]:
    """state -> how many runs (of one tenant, or of all; made at or after `since`, or ever) are in it."""
    query = Run.select(Run.state, fn.COUNT(Run.id))
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    if since is not None:
        query = query.where(Run.created_at >= since)
    return dict(query.group_by(Run.state).tuples())


def _as_datetime(value) -> dt.datetime:
    """MIN() over a datetime column comes back as text on SQLite."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def lease_view(run_id: str) -> tuple[str, int, str | None] | None:
    """(state, attempts, lease owner) of a run, or None if it is gone."""
    row = Run.select(Run.state, Run.attempts, Run.lease_owner).where(Run.id == run_id).tuples().first()
    return tuple(row) if row else None


def renew_lease(run_id: str, number: int, owner: str, until: dt.datetime) -> bool:
    """Extend a running attempt's lease if `owner` still holds it; False if the run moved on."""
    return (
        Run.update(lease_expires_at=until)
        .where((Run.id == run_id) & (Run.state == RunState.RUNNING) & (Run.attempts == number) & (Run.lease_owner == owner))
        .execute()
        == 1
    )


def set_attempt_container(attempt_id: int, container_id: str) -> None:
    RunAttempt.update(container_id=container_id).where(RunAttempt.id == attempt_id).execute()


def append_log(run_id: str, attempt: int, data: str) -> None:
    RunLogChunk.create(run=run_id, attempt=attempt, data=data, at=utcnow())


def read_logs(run_id: str, attempt: int | None = None, after_id: int = 0) -> tuple[str, int]:
    """Concatenate the captured output; return it and the id of the last chunk read."""
    query = RunLogChunk.select(RunLogChunk.id, RunLogChunk.data).where((RunLogChunk.run == run_id) & (RunLogChunk.id > after_id))
    if attempt is not None:
        query = query.where(RunLogChunk.attempt == attempt)
    last = after_id
    parts = []
    for chunk in query.order_by(RunLogChunk.id):
        parts.append(chunk.data)
        last = chunk.id
    return "".join(parts), last
