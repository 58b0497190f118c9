"""Periodic housekeeping run by the scheduler process.

For now one job: the outbox sweep (`Dispatcher.republish_lost`), which gives
runs whose message was lost a new one. Several scheduler copies may sweep at
once: a run published twice is harmless.
"""

from __future__ import annotations

import logging
import threading

import peewee

from actors.dispatch import Dispatcher
from storage.database import release_connection

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 15


def sweep_until_stopped(dispatcher: Dispatcher, stop: threading.Event, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
    """Sweep every `interval` seconds until `stop` is set; a failed sweep is logged and retried next time."""
    while not stop.wait(interval):
        try:
            republished = dispatcher.republish_lost()
            if republished:
                log.info("outbox sweep republished %d run(s)", republished)
        except (peewee.PeeweeException, OSError):
            log.warning("outbox sweep failed; retrying in %.0fs", interval, exc_info=True)
        finally:
            release_connection()
