"""What the command groups share: a group's parser, argument types, and the exit statuses."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from storage.times import naive_utc

# Exit statuses of every command (docs/cli.md).
OK = 0
FAILED = 1  # refused (by the API or the database), or the run ended other than succeeded
USAGE = 2  # bad arguments or settings (argparse's own status), or input the API found invalid
NOT_FOUND = 3
UNREACHABLE = 4  # the API did not answer

# The values commands offer as choices, written out so that `dockyard --help` loads no storage module
# (tests/unit/test_cli.py checks them against storage's enums).
PRIORITIES = ("low", "normal", "high", "critical")
RUN_STATES = ("queued", "running", "retrying", "succeeded", "failed", "timed_out", "dead_letter", "cancelled")
OVERLAPS = ("allow", "forbid", "replace")
SCOPES = ("runs:read", "runs:write", "schedules:write", "processors:write", "admin")


def command_group(sub, name: str, help: str, *, needs_database: bool = False, options=None) -> argparse._SubParsersAction:
    """Add `dockyard <name>` and return where its subcommands go; with `needs_database`, main opens the database
    first; `options(parser)` adds the group's own options (before the subcommand)."""
    group = sub.add_parser(name, help=help)
    group.set_defaults(needs_database=needs_database)
    if options is not None:
        options(group)
    return group.add_subparsers(dest="action", required=True)


class Progress:
    """ "<what> N of M" on stderr, rewritten in place, while a long command works; only at a terminal, so
    piped output and logs stay clean. Call it after each item; `done()` ends the line."""

    def __init__(self, what: str, total: int, *, stream=None):
        self.what, self.total, self.count = what, total, 0
        self.stream = stream or sys.stderr
        self.shown = self.stream.isatty() and total > 1

    def __call__(self, *_):
        self.count += 1
        if self.shown:
            print(f"\r{self.what} {self.count} of {self.total}", end="", file=self.stream, flush=True)

    def done(self) -> None:
        if self.shown and self.count:
            print(file=self.stream)


def add_json_option(parser: argparse.ArgumentParser, help: str = 'print one JSON document ({"items": [...]}) instead of text') -> None:
    parser.add_argument("--json", action="store_true", help=help)


def print_items(items: list[dict]) -> None:
    """The --json answer of a list command: {"items": [...]}, times as UTC ISO 8601 with a Z."""

    def encode(value):
        if isinstance(value, dt.datetime):
            return value.isoformat(timespec="milliseconds") + "Z"
        return str(value)

    print(json.dumps({"items": items}, indent=2, default=encode))


def json_value(value: str):
    """argparse type: a JSON text."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def utc_time(value: str) -> dt.datetime:
    """argparse type: an ISO 8601 time, as naive UTC."""
    try:
        return naive_utc(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None


AGO_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_time(value: str, now=None) -> dt.datetime:
    """argparse type for --since: a time ago (`90s`, `15m`, `1h`, `7d`) or an ISO 8601 time, as naive UTC."""
    number, unit = value[:-1], value[-1:].lower()
    if unit in AGO_UNITS and number.isdigit():
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        try:
            return now - dt.timedelta(seconds=int(number) * AGO_UNITS[unit])
        except OverflowError:
            raise argparse.ArgumentTypeError(f"too long ago: {value!r}") from None
    try:
        return utc_time(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"not a time ago (90s, 15m, 1h, 7d) nor an ISO 8601 time: {value!r}") from None
