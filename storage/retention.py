"""Run history retention: delete runs that ended long ago together with everything recorded about them."""

from __future__ import annotations

import datetime as dt

from storage.database import database
from storage.models import Run, RunAttempt, RunEvent, RunLogChunk, ScheduleEvent

BATCH = 500


def delete_runs_ended_before(cutoff: dt.datetime, batch: int = BATCH) -> int:
    """Delete runs that finished before `cutoff` with their attempts, events and logs; return how many runs.

    Each batch is one transaction: a run is gone with all its rows, or not at
    all. Schedule fire records older than `cutoff` go too.
    """
    deleted = 0
    while True:
        with database.atomic():
            ids = [r.id for r in Run.select(Run.id).where(Run.finished_at < cutoff).limit(batch)]
            if not ids:
                break
            RunLogChunk.delete().where(RunLogChunk.run.in_(ids)).execute()
            RunEvent.delete().where(RunEvent.run.in_(ids)).execute()
            RunAttempt.delete().where(RunAttempt.run.in_(ids)).execute()
            Run.delete().where(Run.id.in_(ids)).execute()
        deleted += len(ids)
    ScheduleEvent.delete().where(ScheduleEvent.at < cutoff).execute()
    return deleted
