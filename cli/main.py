"""The `dockyard` command: admin commands talk to the database, user commands to the HTTP API.

Each command group lives in its own module (cli/admin.py, processors.py,
queues.py, runs.py, schedules.py, stats.py, workers.py), which adds its subcommands and sets
each one's `handler(args, context)`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli import admin, processors, queues, runs, schedules, stats, workers
from settings import Settings, SettingsError, dockyard_version

if TYPE_CHECKING:
    import peewee

GROUPS = (admin, processors, runs, schedules, queues, workers, stats)


@dataclass
class Context:
    """What a handler is given besides its arguments."""

    settings: Settings
    db: peewee.Database | None = None  # opened for the commands that set needs_database


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard",
        description="Run jobs as containers: administer Dockyard and submit runs.",
        epilog="Exit status: 0 done, 1 failed (refused, or the run ended other than succeeded), 2 bad arguments or settings, "
        "3 not found, 4 the API did not answer (docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"dockyard {dockyard_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:  # a host that set logging up (a test runner) keeps its own
        from telemetry.logs import configure_logging

        configure_logging(settings.log_level, settings.log_format)
    context = Context(settings)
    if getattr(args, "needs_database", False):
        from storage.database import open_database

        context.db = open_database(settings.database_url, pool_size=2)
    return args.handler(args, context)


if __name__ == "__main__":
    sys.exit(main())
