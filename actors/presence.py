"""A worker reports in: it registers when it boots, heartbeats while it runs, sweeps its own
engine's orphan containers at start and periodically, and says when it stops."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import urllib.parse

from dramatiq.middleware import Middleware

from actors import metrics
from actors.broker import level_queues, node_of
from actors.containers import ContainerRunner
from actors.orphans import remove_orphan_containers
from settings import Settings, dockyard_version
from storage import workers
from storage.database import release_connection

log = logging.getLogger(__name__)

ORPHAN_SWEEP_SECONDS = 300


def engine_address(url: str) -> str:
    """DOCKYARD_DOCKER_URL as it may be shown: without a user or password in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


class WorkerPresence(Middleware):
    """Dramatiq middleware of a worker process: reports in from boot to shutdown, on a thread of its own."""

    def __init__(
        self,
        settings: Settings,
        runner: ContainerRunner,
        *,
        orphan_sweep_seconds: float = ORPHAN_SWEEP_SECONDS,
        orphan_min_age_seconds: float | None = None,
        clock=time.monotonic,
    ):
        self.settings = settings
        self.runner = runner
        self.orphan_sweep_seconds = orphan_sweep_seconds
        self.orphan_min_age_seconds = orphan_min_age_seconds
        self.clock = clock
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.registered = False
        self.worker = None  # Dramatiq's worker, once booted: its run queue's consumer says which node it is on

    def registration(self, threads: int) -> workers.Registration:
        try:
            engine_name = self.runner.client.info().get("Name")
        except Exception:
            engine_name = None  # the engine is down now; the row says so by leaving it empty
        return workers.Registration(
            name=self.settings.worker_name,
            host=socket.gethostname(),
            pid=os.getpid(),
            engine=engine_address(self.settings.docker_url),
            engine_name=engine_name,
            threads=threads,
            version=dockyard_version(),
            heartbeat_seconds=self.settings.worker_heartbeat_seconds,
        )

    def after_worker_boot(self, broker, worker) -> None:
        self.worker = worker
        self.start(worker.worker_threads)

    def consumer_node(self) -> str | None:
        """host:port of the RabbitMQ node this worker's run-queue consumers are connected to (the first of its
        level queues' that is), if any is."""
        consumers = self.worker.consumers if self.worker is not None else {}
        for queue in level_queues(self.settings.default_queue):
            connection = getattr(getattr(consumers.get(queue), "consumer", None), "connection", None)
            if connection is not None and connection.is_open:
                return node_of(connection)
        return None

    def after_worker_shutdown(self, broker, worker) -> None:
        self.stop()

    def start(self, threads: int) -> None:
        self.thread = threading.Thread(target=self._report, args=(threads,), name="worker-presence", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop reporting and mark this worker stopped (its runs may still be finishing: leases cover them)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        try:
            workers.mark_stopped(self.settings.worker_name)
        except Exception:
            log.warning("could not mark worker %s stopped; it shows as lost after its window", self.settings.worker_name, exc_info=True)
        finally:
            release_connection()

    def _report(self, threads: int) -> None:
        period = self.settings.worker_heartbeat_seconds
        next_sweep = self.clock()
        while not self.stopping.is_set():
            try:
                if not self.registered:
                    workers.register_worker(self.registration(threads))
                    self.registered = True
                    log.info("worker %s registered (heartbeat every %ds)", self.settings.worker_name, period)
                elif not workers.heartbeat(self.settings.worker_name, metrics.busy_threads(), self.consumer_node()):
                    self.registered = False  # its row was forgotten while the database was away: register again
                    continue
            except Exception:
                log.warning("worker %s could not report in; trying again in %ds", self.settings.worker_name, period, exc_info=True)
            finally:
                release_connection()
            if self.clock() >= next_sweep:
                next_sweep = self.clock() + self.orphan_sweep_seconds
                self.sweep()
            self.stopping.wait(period)

    def sweep(self) -> int:
        """Remove this engine's orphan containers; failures are logged and the next sweep tries again."""
        try:
            kwargs = {} if self.orphan_min_age_seconds is None else {"min_age_seconds": self.orphan_min_age_seconds}
            return remove_orphan_containers(self.runner, **kwargs)
        except Exception:
            log.warning("orphan sweep of this worker's engine failed; the next sweep tries again", exc_info=True)
            return 0
        finally:
            release_connection()
