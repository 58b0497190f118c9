"""The storage cases on Postgres (the same cases run on SQLite in tests/unit)."""

import peewee
import psycopg2
import pytest

from storage import database
from tests.conftest import required_env
from tests.storage_cases import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_storage_on_postgres(case, pg_db):
    case(pg_db)


def cut_connections(db) -> None:
    """Terminate every server process serving `db`, as a Postgres restart does."""
    admin = psycopg2.connect(required_env("TEST_POSTGRES_URL"))
    admin.autocommit = True
    admin.cursor().execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db.database,)
    )
    admin.close()


def select_one(db):
    db.connect(reuse_if_open=True)
    try:
        return db.execute_sql("SELECT 1").fetchone()[0]
    finally:
        db.close()


def test_pool_pings_an_idle_connection_before_reuse(pg_db, monkeypatch):
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0)
    assert select_one(pg_db) == 1
    cut_connections(pg_db)
    assert select_one(pg_db) == 1  # the dead connection was found by the ping and replaced


def test_pool_discards_a_busy_connection_the_server_cut(pg_db):
    assert select_one(pg_db) == 1
    cut_connections(pg_db)
    # Returned a moment ago, so not pinged: its first query fails once...
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
        select_one(pg_db)
    # ...and the pool does not hand it out again.
    assert select_one(pg_db) == 1


def test_release_connection_recovers_a_thread_whose_connection_was_cut(pg_db):
    pg_db.connect()
    assert pg_db.execute_sql("SELECT 1").fetchone()[0] == 1
    cut_connections(pg_db)
    for _ in range(2):  # the thread keeps its dead connection...
        with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
            pg_db.execute_sql("SELECT 1")
    database.release_connection()  # ...until it lets go of it
    assert pg_db.execute_sql("SELECT 1").fetchone()[0] == 1
    pg_db.close()
