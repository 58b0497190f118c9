"""Open the database named by a URL: SQLite by default, pooled Postgres in production."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import peewee
from playhouse import db_url

# Models bind to this proxy; an entry point points it at a real database.
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


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
        pooled = "postgresql+pool" + url[len(scheme) :]
        # NOTE: stale_timeout recycles connections a restarted server has cut.
        db = db_url.connect(pooled, max_connections=pool_size, stale_timeout=300, timeout=10)
    else:
        raise ValueError(f"DOCKYARD_DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
    database.initialize(db)
    return db


def is_postgres(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)
