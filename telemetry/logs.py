"""One log format per process: a JSON object per line (or text at a terminal), each line carrying
what is known of the work it is about (run, attempt, processor, tenant, schedule) and its trace.

Code says what it is working on with `log_context(run_id=..., ...)`; every
line logged inside it, by any logger, carries those fields, plus `trace_id`
and `span_id` of the current span when there is one.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
from collections.abc import Mapping
from types import MappingProxyType

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

# The fields log_context accepts, in the order text lines show them.
CONTEXT_FIELDS = ("run_id", "attempt", "processor", "tenant", "schedule_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Never mutated: each log_context sets a new mapping.
_fields: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar("dockyard_log_fields", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields):
    """Label every line logged in this block (in this thread or task) with `fields` (None values are left out)."""
    token = push_context(**fields)
    try:
        yield
    finally:
        pop_context(token)


def push_context(**fields) -> contextvars.Token:
    """`log_context` for code that cannot wrap a block (a middleware's before and after hooks): undo with pop_context."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"push_context: unknown fields {sorted(unknown)} (known: {', '.join(CONTEXT_FIELDS)})")
    return _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


def pop_context(token: contextvars.Token) -> None:
    _fields.reset(token)


def current_fields() -> dict[str, object]:
    """The fields a line logged here would carry: the log context's, then trace_id and span_id."""
    fields = dict(_fields.get())
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        fields["trace_id"] = format(span_context.trace_id, "032x")
        fields["span_id"] = format(span_context.span_id, "016x")
    return fields


class ContextFilter(logging.Filter):
    """Copies the current log context and trace onto each record (a handler filter: it sees every logger's records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonLines(JsonFormatter):
    """time (UTC, ISO 8601), level, logger, message, then the context and any `extra` fields."""

    def __init__(self):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data, record, message_dict):
        # The time first, as people and log shippers read it.
        log_data["time"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)


class TextLines(logging.Formatter):
    """The classic line, with the context appended as key=value pairs."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{key}={getattr(record, key)}" for key in (*CONTEXT_FIELDS, "trace_id") if getattr(record, key, None) is not None]
        if not pairs:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(pairs)}]{newline}{rest}"


def resolve_format(log_format: str, stream=None) -> str:
    """ "json" or "text": `auto` is text at a terminal and JSON everywhere else."""
    if log_format != "auto":
        return log_format
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of a resolved format."""
    return JsonLines() if log_format == "json" else TextLines()


def handler(log_format: str, stream=None) -> logging.Handler:
    """A handler writing `log_format` lines with their context to `stream` (stderr now, by default)."""
    out = logging.StreamHandler(sys.stderr if stream is None else stream)
    out.setFormatter(formatter(resolve_format(log_format, out.stream)))
    out.addFilter(ContextFilter())
    return out


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    """Entry points call this once: the root logger writes `log_format` lines at `level` to stderr, replacing
    any handler set before (Dramatiq's); pika's and APScheduler's chatter kept to warnings."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level.upper())
    logging.getLogger("pika").setLevel(logging.WARNING)
    # APScheduler logs every job added and run at INFO: a line or three per fire.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
