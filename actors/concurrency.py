"""How many runs a worker process runs at once, and the Dramatiq options that follow from it.

A container's life (create, start, wait, remove) is mostly the Docker
engine's work: dockerd, containerd and runc each take a turn, so one thread
leaves the engine idle between turns. Measured on a 2-CPU engine
(docs/performance.md), the engine's rate for trivial containers rises
steeply up to about two in flight per CPU and by only a few percent beyond.
So unless DOCKYARD_WORKER_THREADS says otherwise, a worker runs two
threads per CPU of the engine it talks to (asked at start, since the engine
may be on another host), and one thread per CPU of its own host if the
engine does not answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

THREADS_PER_ENGINE_CPU = 2
MIN_THREADS = 2
MAX_THREADS = 32
# The margin between the grace period (runs finishing) and Dramatiq's own stop deadline.
SHUTDOWN_MARGIN_SECONDS = 30
# Messages each queue's consumer holds, per thread: one running and one waiting of every priority level.
PREFETCH_PER_THREAD = 2


def prefetch_for(threads: int) -> int:
    """Messages a worker prefetches from each of its queues (dramatiq_queue_prefetch).

    Each priority level is a queue of its own (actors/broker.py), and a free
    thread takes the highest level the worker holds. With one message per
    thread, a thread that ends a `critical` run would take a `low` one the
    worker holds before RabbitMQ has sent the next `critical` (sent only
    once the first is acknowledged); a second one per thread keeps a
    `critical` waiting in the worker while others run.
    """
    return PREFETCH_PER_THREAD * threads


def choose_threads(configured: int, engine_cpus: Callable[[], int]) -> tuple[int, str]:
    """(threads, why): `configured` when set (> 0), else two per CPU of the engine, within [MIN, MAX]."""
    if configured > 0:
        return configured, "DOCKYARD_WORKER_THREADS"
    try:
        cpus = int(engine_cpus())
        source = f"{THREADS_PER_ENGINE_CPU} per CPU of the Docker engine's {cpus}"
    except Exception as exc:  # the engine is down or refuses: the worker starts anyway
        cpus = os.cpu_count() or 1
        source = f"{THREADS_PER_ENGINE_CPU} per CPU of this host's {cpus} (the Docker engine did not answer: {exc})"
    return max(MIN_THREADS, min(MAX_THREADS, THREADS_PER_ENGINE_CPU * cpus)), source


def dramatiq_arguments(argv: list[str], threads: int, shutdown_grace_seconds: int) -> list[str]:
    """`argv` with Dockyard's defaults for what it does not say: one process, `threads` threads, and a stop
    deadline past the grace period (so runs are handed back before Dramatiq gives up on them)."""
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("-")}
    extra = []
    if not given & {"--processes", "-p"}:
        extra += ["--processes", "1"]
    if not given & {"--threads", "-t"}:
        extra += ["--threads", str(threads)]
    if "--worker-shutdown-timeout" not in given:
        extra += ["--worker-shutdown-timeout", str((shutdown_grace_seconds + SHUTDOWN_MARGIN_SECONDS) * 1000)]
    return [*argv, *extra]
