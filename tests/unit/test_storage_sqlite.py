"""The storage cases on SQLite (the same cases run on Postgres in tests/integration)."""

import pytest

from storage import run_states
from storage.errors import NotFound
from storage.processors import ProcessorCache, get_processor, put_processor
from storage.run_states import RunState
from tests.storage_cases import CASES, make_processor


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_storage_on_sqlite(case, sqlite_db):
    case(sqlite_db)


def test_every_transition_has_known_states():
    for target, sources in run_states.ALLOWED_SOURCES.items():
        assert target in list(RunState)
        assert sources <= set(list(RunState))
    # nothing leaves a terminal state
    for sources in run_states.ALLOWED_SOURCES.values():
        assert not sources & run_states.TERMINAL


def test_transition_refuses_unknown_columns(sqlite_db):
    with pytest.raises(run_states.IllegalTransition):
        run_states.transition("x", RunState.RUNNING, state="hacked")


def test_processor_cache_serves_reads_until_they_age(sqlite_db):
    now = [0.0]
    cache = ProcessorCache(max_age_seconds=1.0, clock=lambda: now[0])
    with pytest.raises(NotFound):
        cache.get("echo")  # unknown names are not cached...
    make_processor()
    assert cache.get("echo").timeout_seconds == 30  # ...so it is found once registered
    changed = {**get_processor("echo").__data__, "timeout_seconds": 60}
    put_processor({k: v for k, v in changed.items() if k not in ("created_at", "updated_at")}, actor="test")
    now[0] = 0.9
    assert cache.get("echo").timeout_seconds == 30  # changed elsewhere, still fresh here
    now[0] = 1.0
    assert cache.get("echo").timeout_seconds == 60  # aged out: read again
    put_processor({k: v for k, v in {**changed, "timeout_seconds": 90}.items() if k not in ("created_at", "updated_at")}, actor="test")
    cache.forget("echo")
    assert cache.get("echo").timeout_seconds == 90  # changed through this process: seen at once
