"""Stopping a worker: finish what it holds within a grace period, else hand it back.

On SIGTERM Dramatiq's worker stops taking messages and waits for its threads.
`GracefulShutdown` notes when that began; each running attempt's watch asks
it whether the grace period is over, and if so kills its container and
hands the run back for another worker to retry.
"""

from __future__ import annotations

import logging
import signal
import time

from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)

# Two SIGTERMs this close together are one stop request delivered twice.
DUPLICATE_SIGNAL_SECONDS = 5.0


class GracefulShutdown(Middleware):
    def __init__(self, grace_seconds: float, clock=time.monotonic):
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.deadline: float | None = None

    def before_worker_shutdown(self, broker, worker) -> None:
        self.deadline = self.clock() + self.grace_seconds
        log.info("worker stopping: runs in progress have %gs to finish before they are handed back", self.grace_seconds)

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline


def ignore_duplicate_sigterm() -> None:
    """Make the SIGTERM handler in place ignore a second SIGTERM that arrives right after the first.

    When a supervisor signals the whole process group (honcho, a PaaS, a
    shell's Ctrl-C), Dramatiq's worker process gets SIGTERM twice: once
    directly and once relayed by Dramatiq's main process; the second would
    kill it mid-run. A SIGTERM sent later still forces the stop.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return
    first: list[float] = []

    def handler(signum, frame):
        now = time.monotonic()
        if first and now - first[0] < DUPLICATE_SIGNAL_SECONDS:
            return
        first[:] = [now]
        previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)
