"""Group commit: concurrent submissions of one process share one insert and one commit.

A request thread hands its new run to the process's writer thread and
waits; the writer inserts every run that arrived while it was busy in one
statement (one transaction), then wakes their threads. Nobody waits on
purpose: alone, a run is inserted as soon as it arrives; under load, the
runs that queue up behind a commit go together in the next one. So the
database does one statement, one commit (one WAL flush) and one round trip
per batch instead of per run, and on SQLite only this thread of the process
takes the write lock, instead of every request thread taking turns through
SQLite's busy-wait.

A batch that fails on a constraint (a taken idempotency key or fire time)
is inserted again one run at a time, so each waiting thread gets its own
run's answer; any other failure is every waiting thread's. The writer
thread starts on first use (after a fork, each process has its own) and
stops at `close()`.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import uuid

import peewee

from storage.database import release_connection
from storage.metrics import GROUP_COMMIT_RUNS
from storage.models import Run
from storage.run_states import insert_queued_many, new_queued

log = logging.getLogger(__name__)

MAX_BATCH = 256
# How often a waiting request checks that the writer thread is still there.
WRITER_CHECK_SECONDS = 1.0


class _Pending:
    __slots__ = ("done", "error", "run")

    def __init__(self, run: Run):
        self.run = run
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """Inserts new queued runs for many threads at once; `insert(**fields)` returns once its run is committed."""

    def __init__(self, max_batch: int = MAX_BATCH):
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # statements written, for tests and benchmarks
        self.inserted = 0

    def insert(self, **fields) -> Run:
        """Insert a new queued run and its creation event; raise what its own insert raised."""
        fields.setdefault("id", uuid.uuid4().hex)
        pending = _Pending(new_queued(**fields))
        writer = self._start()
        self._queue.put(pending)
        while not pending.done.wait(WRITER_CHECK_SECONDS):
            if not writer.is_alive() and not pending.done.is_set():  # closed between our start and our put
                raise RuntimeError("group commit closed before this run was written; nothing was inserted")
        if pending.error is not None:
            raise pending.error
        return pending.run

    def close(self) -> None:
        """Finish what is queued and stop the writer thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
            atexit.unregister(self.close)

    def _start(self) -> threading.Thread:
        """The writer thread, started on first use."""
        thread = self._thread
        if thread is not None:
            return thread
        with self._lock:
            if self._closed:
                raise RuntimeError("group commit is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
                self._thread.start()
                atexit.register(self.close)
            return self._thread

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            stop = first is None
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._write(batch)
            if stop:
                release_connection()
                return

    def _insert(self, runs: list[Run]) -> None:
        """One statement for `runs`, counted."""
        insert_queued_many(runs)
        self.batches += 1
        self.inserted += len(runs)
        GROUP_COMMIT_RUNS.observe(len(runs))

    def _write(self, batch: list[_Pending]) -> None:
        try:
            self._insert([p.run for p in batch])
        except peewee.IntegrityError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                self._one_by_one(batch)
        except BaseException as exc:  # the database is away: every run of the batch fails alike
            release_connection()
            for p in batch:
                p.error = exc
        finally:
            for p in batch:
                p.done.set()

    def _one_by_one(self, batch: list[_Pending]) -> None:
        for p in batch:
            try:
                self._insert([p.run])
            except BaseException as exc:
                p.error = exc
                if not isinstance(exc, peewee.IntegrityError):
                    release_connection()
