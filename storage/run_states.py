"""The run state machine, written once: the allowed transitions and the one writer of `state`."""

from __future__ import annotations

import functools
from enum import StrEnum

from storage.database import database, is_postgres, set_clause
from storage.models import Run, RunEvent, utcnow


class RunState(StrEnum):
    """Where a run is in its life; see docs/architecture.md for the diagram."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DEAD_LETTER = "dead_letter"
    CANCELLED = "cancelled"


class AttemptOutcome(StrEnum):
    """How one attempt (one container) ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"
    CANCELLED = "cancelled"
    # The engine's fault, not the processor's (see actors.retry_policy).
    INFRASTRUCTURE_ERROR = "infrastructure_error"
    WORKER_LOST = "worker_lost"


TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.DEAD_LETTER, RunState.CANCELLED})

# target state -> the states it may be entered from
ALLOWED_SOURCES: dict[RunState, frozenset[RunState]] = {
    RunState.RUNNING: frozenset({RunState.QUEUED}),
    RunState.RETRYING: frozenset({RunState.RUNNING}),
    RunState.QUEUED: frozenset({RunState.RETRYING}),
    RunState.SUCCEEDED: frozenset({RunState.RUNNING}),
    RunState.FAILED: frozenset({RunState.RUNNING}),
    RunState.TIMED_OUT: frozenset({RunState.RUNNING}),
    RunState.DEAD_LETTER: frozenset({RunState.RUNNING, RunState.RETRYING}),
    RunState.CANCELLED: frozenset({RunState.QUEUED, RunState.RETRYING, RunState.RUNNING}),
}

# Columns a transition may set together with the state.
TRANSITION_FIELDS = frozenset(
    {
        "attempts",
        "result",
        "exit_code",
        "error_reason",
        "error_message",
        "lease_owner",
        "lease_expires_at",
        "started_at",
        "finished_at",
        "next_attempt_at",
    }
)


class IllegalTransition(ValueError):
    """A transition the state machine never allows (a programming error)."""


def can_transition(from_state: str, to_state: RunState) -> bool:
    return from_state in ALLOWED_SOURCES.get(to_state, ())


@functools.lru_cache(maxsize=64)
def _postgres_insert_sql(rows: int = 1) -> str:
    """Insert runs and their creation events in one statement (one round trip, atomic on its own)."""
    columns = ", ".join(f.column_name for f in Run._meta.sorted_fields)
    row = "(" + ", ".join(["%s"] * len(Run._meta.sorted_fields)) + ")"
    return (
        f"WITH created AS (INSERT INTO runs ({columns}) VALUES {', '.join([row] * rows)} RETURNING id, state, created_at) "
        "INSERT INTO run_events (run_id, from_state, to_state, at) SELECT id, NULL, state, created_at FROM created"
    )


def new_queued(**fields) -> Run:
    """A new queued run, not yet written (`insert_queued_many` writes it)."""
    now = utcnow()
    return Run(state=RunState.QUEUED, created_at=now, updated_at=now, **fields)


def insert_queued(**fields) -> Run:
    """Insert a new queued run and its creation event, together or not at all."""
    run = new_queued(**fields)
    insert_queued_many([run])
    return run


# SQLite allows 32,766 parameters per statement; a run has about 35 columns.
SQLITE_ROWS_PER_INSERT = 400


def insert_queued_many(runs: list[Run]) -> None:
    """Insert new queued runs (from `new_queued`) and their creation events in one transaction: all or none."""
    if is_postgres(database.obj):
        # NOTE: the submit hot path. Peewee builds this SQL once per batch size
        # instead of per request: that costs ten times the round trip on a 2-core host.
        params = [f.db_value(run.__data__.get(f.name)) for run in runs for f in Run._meta.sorted_fields]
        database.execute_sql(_postgres_insert_sql(len(runs)), params)
        return
    with database.atomic():
        for start in range(0, len(runs), SQLITE_ROWS_PER_INSERT):
            part = runs[start : start + SQLITE_ROWS_PER_INSERT]
            Run.insert_many([{f.name: run.__data__.get(f.name) for f in Run._meta.sorted_fields} for run in part]).execute()
            RunEvent.insert_many(
                [{"run": run.id, "from_state": None, "to_state": RunState.QUEUED, "at": run.created_at} for run in part]
            ).execute()


def transition(
    run_id: str,
    to_state: RunState,
    *,
    reason: str | None = None,
    message: str | None = None,
    expected_attempt: int | None = None,
    **fields,
) -> RunState | None:
    """Move a run to `to_state` if its current state allows it; return the state it left, or None.

    A compare-and-set: the UPDATE names the state it read, so of two writers
    racing (a cancel and a finish, say) exactly one wins and the other gets
    None. The event row is written in the same transaction. With
    `expected_attempt`, the run must also still be on that attempt: a worker
    that lost its lease cannot overwrite the attempt that replaced it.
    """
    if to_state not in ALLOWED_SOURCES:
        raise IllegalTransition(f"no transition into {to_state!r}")
    unknown = set(fields) - TRANSITION_FIELDS
    if unknown:
        raise IllegalTransition(f"a transition cannot set {sorted(unknown)}")
    sources = ALLOWED_SOURCES[to_state]
    now = utcnow()
    if is_postgres(database.obj):
        current = _transition_postgres(run_id, to_state, sources, reason, message, expected_attempt, now, fields)
        return None if current is None else RunState(current)
    with database.atomic():
        fence = (Run.id == run_id) if expected_attempt is None else ((Run.id == run_id) & (Run.attempts == expected_attempt))
        current = Run.select(Run.state).where(fence).scalar()
        if current is None or current not in sources:
            return None
        changes = {Run.state: to_state, Run.updated_at: now}
        changes.update({getattr(Run, name): value for name, value in fields.items()})
        updated = Run.update(changes).where(fence & (Run.state == current)).execute()
        if updated != 1:
            return None
        RunEvent.create(
            run=run_id,
            from_state=current,
            to_state=to_state,
            reason=reason,
            message=message,
            at=now,
        )
    return RunState(current)


def _transition_postgres(run_id, to_state, sources, reason, message, expected_attempt, now, fields) -> str | None:
    """The same compare-and-set as a single statement (one round trip instead of five).

    The row is locked as it is read; a writer that waited for the lock reads
    the row as the first one left it (Postgres re-reads a locked row that
    changed), so the state it compares is the current one, and of two
    racing writers exactly one moves the run. The event row is written by
    the same statement: both or neither.
    """
    changes = {"state": to_state, "updated_at": now, **fields}
    set_sql, params = set_clause(Run, changes)
    fence, fence_params = "id = %s", [run_id]
    if expected_attempt is not None:
        fence, fence_params = "id = %s AND attempts = %s", [run_id, expected_attempt]
    allowed = ", ".join(["%s"] * len(sources))
    sql = (
        f"WITH old AS (SELECT id, state FROM runs WHERE {fence} FOR UPDATE), "
        f"moved AS (UPDATE runs SET {set_sql} FROM old WHERE runs.id = old.id AND old.state IN ({allowed}) "
        "RETURNING old.state AS from_state) "
        "INSERT INTO run_events (run_id, from_state, to_state, reason, message, at) "
        "SELECT %s, from_state, %s, %s, %s, %s FROM moved RETURNING from_state"
    )
    event = [run_id, str(to_state), reason, message, now]
    row = database.execute_sql(sql, [*fence_params, *params, *sorted(str(s) for s in sources), *event]).fetchone()
    return None if row is None else row[0]


def is_terminal(state: str) -> bool:
    return state in TERMINAL
