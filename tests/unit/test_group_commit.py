"""storage/group_commit.py beyond the storage cases (which run it on SQLite and Postgres): failures and closing."""

import peewee
import pytest

from storage import group_commit
from storage.group_commit import GroupCommit
from storage.models import Run
from tests.storage_cases import _racing_inserts, make_processor

FIELDS = {"processor": "echo", "queue": "runs", "priority": "normal", "labels": {}, "timeout_seconds": 30}


def test_a_database_failure_is_every_waiting_runs_and_the_writer_goes_on(sqlite_db, monkeypatch):
    make_processor()
    real = group_commit.insert_queued_many
    down = True

    def flaky(runs):
        if down:
            raise peewee.OperationalError("database is locked")
        return real(runs)

    monkeypatch.setattr(group_commit, "insert_queued_many", flaky)
    group = GroupCommit()
    try:
        results = _racing_inserts(group, lambda i: FIELDS, 8)
        assert all(isinstance(r, peewee.OperationalError) for r in results), results
        assert Run.select().count() == 0
        down = False
        assert Run.get_by_id(group.insert(**FIELDS).id).state == "queued"
    finally:
        group.close()


def test_closing_finishes_and_refuses_new_inserts(sqlite_db):
    make_processor()
    group = GroupCommit()
    group.insert(**FIELDS)
    group.close()
    with pytest.raises(RuntimeError, match="closed"):
        group.insert(**FIELDS)
    assert Run.select().count() == 1


def test_a_run_handed_over_as_the_writer_stops_is_refused_not_left_waiting(sqlite_db, monkeypatch):
    """close() between a request's start and its hand-over: the request gets an error, not a wait forever."""
    make_processor()
    monkeypatch.setattr(group_commit, "WRITER_CHECK_SECONDS", 0.05)
    group = GroupCommit()
    group.insert(**FIELDS)
    writer, real = group._thread, group._queue

    class LateQueue:
        """The writer's queue, but the request's hand-over comes after close() has stopped the writer."""

        def put(self, item):
            if item is not None:
                group._queue = real
                group.close()
                group._thread = writer  # as the request saw it before close()
            real.put(item)

    group._queue = LateQueue()
    with pytest.raises(RuntimeError, match="nothing was inserted"):
        group.insert(**FIELDS)
    assert Run.select().count() == 1
