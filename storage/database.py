"""Open the database named by a URL: SQLite by default, pooled Postgres in production."""

from __future__ import annotations

import os
import threading
import time
import weakref
from urllib.parse import urlsplit

import peewee
from playhouse import db_url
from playhouse.pool import PooledPostgresqlDatabase

from storage.metrics import POOL_CONNECTIONS, POOL_MAX

# Bound once: .labels() on every check-out would cost more than the check-out.
POOL_IN_USE = POOL_CONNECTIONS.labels(state="in_use")
POOL_IDLE = POOL_CONNECTIONS.labels(state="idle")

# Models bind to this proxy; an entry point points it at a real database.
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


# A pooled connection idle for longer than this is pinged before reuse.
PING_AFTER_IDLE_SECONDS = 1.0
# How often the pool's gauges are brought up to date.
POOL_SAMPLE_SECONDS = 1.0


class PostgresPool(PooledPostgresqlDatabase):
    """Peewee's Postgres pool, pinging only connections that sat idle.

    Peewee pings (SELECT 1) every connection it hands out, under the pool's
    lock: one extra round trip per API request, serialised across threads.
    A connection returned less than PING_AFTER_IDLE_SECONDS ago was working
    then; if the server went away since, its first query fails, psycopg2
    marks it closed, and the pool discards it when it comes back.

    NOTE: these overrides are of private methods of peewee's pool; the
    peewee version is pinned to one minor release in pyproject.toml for them.
    """

    def __init__(self, *args, **kwargs):
        self._returned_at: dict[int, float] = {}
        self._sampled_in: int | None = None  # the process whose sampler thread runs
        super().__init__(*args, **kwargs)
        POOL_MAX.set(self._max_connections or 0)

    def _connect(self):
        if self._sampled_in != os.getpid():  # first use in this process (gunicorn forks after import)
            self._sampled_in = os.getpid()
            threading.Thread(target=_sample_use, args=(weakref.ref(self),), name="pool-gauges", daemon=True).start()
        return super()._connect()

    def _is_closed(self, conn) -> bool:
        if conn.closed:
            return True
        returned = self._returned_at.get(self.conn_key(conn))
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        key = self.conn_key(conn)
        if close_conn:
            self._returned_at.pop(key, None)
        else:
            self._returned_at[key] = time.monotonic()
        super()._close(conn, close_conn)

    def _close_raw(self, conn):
        self._returned_at.pop(self.conn_key(conn), None)
        super()._close_raw(conn)


def _sample_use(pool_ref: weakref.ref) -> None:
    """A pool's gauges, every POOL_SAMPLE_SECONDS while the pool exists: setting them at each check-out would
    cost the request path more than the check-out (lengths read without the pool's lock: near enough)."""
    while (pool := pool_ref()) is not None:
        POOL_IN_USE.set(len(pool._in_use))
        POOL_IDLE.set(len(pool._connections))
        del pool
        time.sleep(POOL_SAMPLE_SECONDS)


def open_database(url: str, *, pool_size: int = 10) -> peewee.Database:
    """Connect the model proxy to the database at `url` and return it."""
    scheme = urlsplit(url).scheme
    if scheme in ("sqlite", "sqlite+pool"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # NOTE: BEGIN IMMEDIATE takes the write lock up front; a deferred
        # transaction that reads then writes fails with SQLITE_BUSY (not
        # retried by busy_timeout) when another writer committed in between.
        db = db_url.connect(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
    elif scheme in ("postgres", "postgresql", "postgres+pool", "postgresql+pool"):
        # NOTE: stale_timeout recycles connections a restarted server has cut.
        db = PostgresPool(max_connections=pool_size, stale_timeout=300, timeout=10, **db_url.parse(url))
    else:
        raise ValueError(f"DOCKYARD_DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
    database.initialize(db)
    return db


def set_clause(model: type[peewee.Model], changes: dict) -> tuple[str, list]:
    """`column = %s, ...` and its parameters for hand-written Postgres UPDATEs of `model` (field name -> value)."""
    fields = model._meta.fields
    sql = ", ".join(f"{fields[name].column_name} = %s" for name in changes)
    return sql, [fields[name].db_value(value) for name, value in changes.items()]


def is_postgres(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def release_connection() -> None:
    """Give this thread's connection back to the pool, or drop it if it broke.

    Peewee keeps a thread's connection until it is closed, even one the server
    cut: every later query on that thread would fail. Long-lived threads call
    this after a database error, and between units of work.
    """
    try:
        if not database.is_closed():
            database.close()
    except Exception:
        pass  # peewee forgets the connection even when closing it fails
