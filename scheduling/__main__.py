"""Scheduler entry point: `python -m scheduling` (the Procfile's `scheduler`).

Run any number of copies: one leads (a Postgres advisory lock, or a file
lock beside the SQLite database), fires the schedules and sends the
housekeeping messages; the others wait to take over. SIGTERM or SIGINT
gives the lock up and exits.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import prometheus_client

from actors.dispatch import create_dispatcher
from actors.periodic import HousekeepingSender
from scheduling.leader import FIRE_THREADS, Leader
from scheduling.leadership import leadership_for
from scheduling.metrics import QueuedRuns, WorkerCount
from settings import Settings
from storage.database import open_database
from telemetry.metrics import serve_metrics
from telemetry.process import observe_process

log = logging.getLogger("scheduling")


def main() -> int:
    settings = Settings.from_env()
    observe_process(settings, "scheduler")
    # The fire threads, the sync loop and /metrics (QueuedRuns and WorkerCount read the database at each scrape).
    open_database(settings.database_url, pool_size=FIRE_THREADS + 3)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    prometheus_client.REGISTRY.register(QueuedRuns())
    prometheus_client.REGISTRY.register(WorkerCount())
    serve_metrics(settings.scheduler_metrics_port, "DOCKYARD_SCHEDULER_METRICS_PORT")
    dispatcher = create_dispatcher(settings)
    housekeeping = HousekeepingSender(dispatcher.broker, settings.housekeeping_queue)
    leader = Leader(leadership_for(settings.database_url), dispatcher, name=settings.worker_name, housekeeping=housekeeping)
    log.info("scheduler %s started; campaigning for leadership", settings.worker_name)
    try:
        leader.run(stop)
    finally:
        dispatcher.close()
    log.info("scheduler %s stopped", settings.worker_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
