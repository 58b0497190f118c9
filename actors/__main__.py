"""Worker entry point: `python -m actors actors.worker [dramatiq options]` (the Procfile's `worker`).

Dramatiq's own command line, with Dockyard's log format in every process:
the parent's lines (start, stop, a worker process dying) as well as its
worker processes', which configure theirs when they import actors.worker.
Options not given are Dockyard's (actors/concurrency.py): one process, its
thread count from DOCKYARD_WORKER_THREADS or the Docker engine's CPUs, a
prefetch of two messages per thread from each queue, and a stop deadline past the grace period.
"""

from __future__ import annotations

import logging
import os
import sys

from dramatiq import cli

from actors.concurrency import choose_threads, dramatiq_arguments, prefetch_for
from actors.engine import engine_client
from settings import Settings, SettingsError
from telemetry.logs import configure_logging

log = logging.getLogger("actors")
ENGINE_TIMEOUT_SECONDS = 5


def engine_cpus(settings: Settings) -> int:
    client = engine_client(settings, timeout=ENGINE_TIMEOUT_SECONDS)
    try:
        return client.info()["NCPU"]
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dockyard worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    argv = list(sys.argv[1:] if argv is None else argv)
    threads, why = choose_threads(settings.worker_threads, lambda: engine_cpus(settings))
    # Dramatiq would otherwise install its own text format before ours.
    args = cli.make_argument_parser().parse_args(
        ["--skip-logging", *dramatiq_arguments(argv, threads, settings.worker_shutdown_grace_seconds)]
    )
    if args.threads != threads:
        why = "--threads"
    # The worker processes read these: the thread gauge, and two messages prefetched per thread.
    os.environ["DOCKYARD_WORKER_THREADS"] = str(args.threads)
    os.environ.setdefault("dramatiq_queue_prefetch", str(prefetch_for(args.threads)))
    log.info("worker: %d thread(s) (%s), prefetch %s", args.threads, why, os.environ["dramatiq_queue_prefetch"])
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
