"""Run history retention: delete runs that ended long ago together with everything recorded about them."""

from __future__ import annotations

import datetime as dt
import time

from storage.database import database
from storage.models import Run, RunAttempt, RunEvent, RunLogChunk, ScheduleEvent

BATCH = 200
# After each batch, wait this many times as long as the batch took: retention takes at most a quarter of
# the database's time from submissions and reads while it works through a long backlog.
PAUSE_RATIO = 3.0
# One call stops after this long; the next (an hour later) goes on where it stopped.
BUDGET_SECONDS = 300.0


def delete_runs_ended_before(
    cutoff: dt.datetime,
    batch: int = BATCH,
    *,
    pause_ratio: float = PAUSE_RATIO,
    budget_seconds: float = BUDGET_SECONDS,
    clock=time.monotonic,
    sleep=time.sleep,
) -> tuple[int, bool]:
    """Delete runs that finished before `cutoff` with their attempts, events and logs.

    Return how many runs, and whether any remain (the budget ran out first).
    Each batch is one transaction: a run is gone with all its rows, or not at
    all. Schedule fire records older than `cutoff` go too.
    """
    deleted = 0
    began = clock()
    while True:
        started = clock()
        with database.atomic():
            ids = [r.id for r in Run.select(Run.id).where(Run.finished_at < cutoff).limit(batch)]
            if not ids:
                break
            RunLogChunk.delete().where(RunLogChunk.run.in_(ids)).execute()
            RunEvent.delete().where(RunEvent.run.in_(ids)).execute()
            RunAttempt.delete().where(RunAttempt.run.in_(ids)).execute()
            Run.delete().where(Run.id.in_(ids)).execute()
        deleted += len(ids)
        if clock() - began >= budget_seconds:
            return deleted, True
        if pause_ratio and len(ids) == batch:
            sleep((clock() - started) * pause_ratio)
    ScheduleEvent.delete().where(ScheduleEvent.at < cutoff).execute()
    return deleted, False
