"""Scheduler entry point: `python -m scheduling`.

This version opens the database, runs the housekeeping sweep (the outbox)
until SIGTERM or SIGINT and exits cleanly; leader election and cron firing
plug in here.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from actors.dispatch import create_dispatcher
from scheduling.housekeeping import sweep_until_stopped
from settings import Settings, configure_logging
from storage.database import open_database

log = logging.getLogger("scheduling")


def main() -> int:
    settings = Settings.from_env()
    configure_logging(settings)
    db = open_database(settings.database_url, pool_size=2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    db.connect(reuse_if_open=True)
    db.close()
    log.info("scheduler started: outbox sweep on (no schedules are fired by this version)")
    sweep_until_stopped(create_dispatcher(settings), stop)
    log.info("scheduler stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
