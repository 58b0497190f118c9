"""Worker entry point: `dramatiq actors.worker` imports this module.

It reads the environment, opens the database, sets the broker and declares
the actors; nothing else in actors/ does any of that.
"""

from __future__ import annotations

import logging
import threading
import time

import dramatiq

from actors import metrics
from actors.broker import create_broker
from actors.containers import ContainerRunner
from actors.dispatch import Dispatcher
from actors.engine import engine_client
from actors.execution import Executor
from actors.housekeeping import Housekeeping, declare_housekeeping_actors
from actors.presence import WorkerPresence
from actors.queues import QueueAdmin
from actors.runs import declare_run_actors
from actors.shutdown import GracefulShutdown, ignore_duplicate_sigterm
from actors.usage import AttemptUsage
from settings import Settings
from storage.database import open_database
from telemetry.metrics import serve_metrics
from telemetry.process import observe_process

log = logging.getLogger(__name__)
settings = Settings.from_env()
observe_process(settings, "worker")
# Dramatiq's worker process installed its SIGTERM handler before importing us.
ignore_duplicate_sigterm()
open_database(settings.database_url, pool_size=settings.database_pool_size)
shutdown = GracefulShutdown(settings.worker_shutdown_grace_seconds)
broker = create_broker(settings)
broker.add_middleware(shutdown)
dramatiq.set_broker(broker)
client = engine_client(settings)
try:
    usage = AttemptUsage.for_engine(client.info())
except Exception:  # the engine is down now: attempts fail as infrastructure errors until it is back
    log.warning("attempt usage not measured: the Docker engine did not answer at start", exc_info=True)
    usage = None
executor = Executor(
    settings=settings,
    client=client,
    runner=ContainerRunner(client, usage),
    worker_name=settings.worker_name,
    shutdown=shutdown,
)
run_actors = declare_run_actors(broker, executor, settings.default_queue)
housekeeping = Housekeeping(settings, Dispatcher(broker), QueueAdmin(broker))
housekeeping_actors = declare_housekeeping_actors(broker, housekeeping, settings.housekeeping_queue)
metrics.THREADS.set(settings.worker_threads)
# Registers and heartbeats from the worker's boot, and sweeps this engine's orphan containers.
broker.add_middleware(WorkerPresence(settings, executor.runner))


def measure_queues_at_start(attempts: int = 15, interval: float = 2.0) -> None:
    """The queue depths from the start, not only after the leader's first minutely measure; the
    queues exist once the consumers have declared them, a moment after this module is imported."""
    for _ in range(attempts):
        time.sleep(interval)
        try:
            housekeeping.measure_queues()
            return
        except Exception:
            continue
    log.warning("could not measure the queues at start; the minutely measure will")


threading.Thread(target=measure_queues_at_start, name="measure-queues", daemon=True).start()
serve_metrics(settings.worker_metrics_port, "DOCKYARD_WORKER_METRICS_PORT")
