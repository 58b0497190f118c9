"""The workers that report in: each worker process registers when it starts, heartbeats while it
runs and says when it stops. A worker silent for longer than its heartbeat window is lost.

A lost worker's runs are not handled here: their leases expire and another
worker takes them over (actors/execution.py). This is what operators read
(`GET /v1/workers`, `dockyard workers list`, the scheduler's
`dockyard_workers` gauge).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from storage.database import database
from storage.models import Worker, utcnow

# Heartbeats a worker may miss before it is shown as lost.
MISSED_HEARTBEATS = 3
# Rows of workers stopped or lost this long ago are forgotten (`forget_gone_workers`).
FORGET_AFTER = dt.timedelta(days=1)


class WorkerState(enum.StrEnum):
    LIVE = "live"
    LOST = "lost"  # silent for longer than its heartbeat window
    STOPPED = "stopped"  # said so on its way out


@dataclass(frozen=True)
class Registration:
    name: str
    host: str
    pid: int
    engine: str
    engine_name: str | None
    threads: int
    version: str
    heartbeat_seconds: int


def worker_state(worker: Worker, now: dt.datetime) -> WorkerState:
    """Live, lost (no heartbeat within MISSED_HEARTBEATS of its period) or stopped."""
    if worker.stopped_at is not None:
        return WorkerState.STOPPED
    window = dt.timedelta(seconds=worker.heartbeat_seconds * MISSED_HEARTBEATS)
    return WorkerState.LIVE if now - worker.last_seen_at <= window else WorkerState.LOST


def register_worker(registration: Registration, now: dt.datetime | None = None) -> None:
    """Record a worker at its start; a name seen before (a restart with the same name) starts afresh."""
    now = now or utcnow()
    values = {**registration.__dict__, "busy": 0, "broker_node": None, "started_at": now, "last_seen_at": now, "stopped_at": None}
    with database.atomic():
        Worker.insert(**values).on_conflict(conflict_target=[Worker.name], update=values).execute()


def heartbeat(name: str, busy: int, broker_node: str | None = None, now: dt.datetime | None = None) -> bool:
    """A worker is alive with `busy` threads running attempts, consuming from `broker_node`; False if its row
    is gone or it had stopped."""
    changes = {"busy": busy, "broker_node": broker_node, "last_seen_at": now or utcnow()}
    updated = Worker.update(**changes).where((Worker.name == name) & Worker.stopped_at.is_null()).execute()
    return updated == 1


def mark_stopped(name: str, now: dt.datetime | None = None) -> None:
    """A worker stopped on purpose: it no longer counts as live, and is not shown as lost."""
    Worker.update(busy=0, stopped_at=now or utcnow()).where(Worker.name == name).execute()


def list_workers(*, include_gone: bool = False, now: dt.datetime | None = None) -> list[tuple[Worker, WorkerState]]:
    """Workers with their state, by name: live and lost ones, and stopped ones too with `include_gone`."""
    now = now or utcnow()
    rows = [(w, worker_state(w, now)) for w in Worker.select().order_by(Worker.name)]
    return rows if include_gone else [(w, s) for w, s in rows if s is not WorkerState.STOPPED]


def count_by_state(now: dt.datetime | None = None) -> dict[WorkerState, int]:
    """How many workers are live, lost and stopped (the rows not yet forgotten)."""
    counts = dict.fromkeys(WorkerState, 0)
    for _, state in list_workers(include_gone=True, now=now):
        counts[state] += 1
    return counts


def forget_gone_workers(now: dt.datetime | None = None) -> int:
    """Delete the rows of workers not seen for FORGET_AFTER (stopped or lost long ago); return how many."""
    return Worker.delete().where(Worker.last_seen_at < (now or utcnow()) - FORGET_AFTER).execute()
