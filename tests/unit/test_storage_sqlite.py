"""The storage cases on SQLite (the same cases run on Postgres in tests/integration)."""

import pytest

from storage import run_states
from tests.storage_cases import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_storage_on_sqlite(case, sqlite_db):
    case(sqlite_db)


def test_every_transition_has_known_states():
    for target, sources in run_states.ALLOWED_SOURCES.items():
        assert target in run_states.STATES
        assert sources <= set(run_states.STATES)
    # nothing leaves a terminal state
    for sources in run_states.ALLOWED_SOURCES.values():
        assert not sources & run_states.TERMINAL


def test_transition_refuses_unknown_columns(sqlite_db):
    with pytest.raises(run_states.IllegalTransition):
        run_states.transition("x", run_states.RUNNING, state="hacked")
