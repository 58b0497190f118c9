"""Worker entry point: `python -m actors actors.worker [dramatiq options]` (the Procfile's `worker`).

Dramatiq's own command line, with Dockyard's log format in every process:
the parent's lines (start, stop, a worker process dying) as well as its
worker processes', which configure theirs when they import actors.worker.
"""

from __future__ import annotations

import sys

from dramatiq import cli

from settings import Settings, SettingsError
from telemetry.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dockyard worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # Dramatiq would otherwise install its own text format before ours.
    args = cli.make_argument_parser().parse_args(["--skip-logging", *(sys.argv[1:] if argv is None else argv)])
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
