"""Which scheduler copy leads: a Postgres advisory lock, or a file lock beside a SQLite database.

Both locks belong to something the operating system or the database frees
when the holder dies: a Postgres session (its own connection, never the
pool's) or an open file. A killed leader's lock is free at once, and a
waiting copy takes it at its next try.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from typing import Protocol
from urllib.parse import urlsplit

import psycopg2
from playhouse import db_url

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: "dockyard" in ASCII. Advisory locks are per database.
LOCK_KEY = 0x646F636B79617264  # < 2**63: a valid bigint
# The lock's connection notices a dead server within ~10 s (keepalives when
# idle, tcp_user_timeout while a query waits: retransmissions alone take
# minutes), and the server notices a dead leader's host within ~11 s (its
# keepalives for this session), so a partitioned leader does not block a
# takeover for hours.
CONNECT_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
    "application_name": "dockyard-scheduler",
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 -c statement_timeout=5000",
}


class Leadership(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process now leads."""

    def held(self) -> bool:
        """True while the lock is still this process's (checked before each round of leading)."""

    def release(self) -> None:
        """Give the lock up (also safe when it is already lost)."""


class PostgresLeadership:
    """A session-level advisory lock held on a connection of its own."""

    def __init__(self, url: str, key: int = LOCK_KEY):
        params = db_url.parse(url)
        params["dbname"] = params.pop("database")
        self.params = {**params, **CONNECT_OPTIONS}
        self.key = key
        self.conn = None

    def try_acquire(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg2.connect(**self.params)
                self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                return bool(cur.fetchone()[0])
        except psycopg2.Error as exc:
            log.warning("could not try the leader lock: %s", str(exc).strip())
            self._drop()
            return False

    def held(self) -> bool:
        # NOTE: a session lock lasts as long as its session: a connection that
        # still answers still holds it.
        if self.conn is None or self.conn.closed:
            return False
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except psycopg2.Error as exc:
            log.warning("the leader lock's connection failed: %s", str(exc).strip())
            self._drop()
            return False

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(psycopg2.Error), self.conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self.conn.close()
        self.conn = None


class FileLeadership:
    """An exclusive flock on a file: copies on one host sharing a SQLite database."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for operators: who leads
        self.fd = fd
        return True

    def held(self) -> bool:
        # NOTE: a lock file deleted (or replaced) under us lets another copy lock a new one.
        try:
            return self.fd is not None and os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def leadership_for(database_url: str) -> Leadership:
    """The lock that fits the database: Postgres' advisory lock, or a file beside the SQLite file."""
    scheme = urlsplit(database_url).scheme
    if scheme.startswith("postgres"):
        return PostgresLeadership(database_url)
    path = database_url.split(":///", 1)[1] if ":///" in database_url else ""
    if not path or path == ":memory:":
        path = ".dockyard/dockyard.db"
    return FileLeadership(f"{path}.scheduler.lock")
