"""Capture a container's output: bounded logs flushed while it runs, a tail, and the result line."""

from __future__ import annotations

import codecs
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

RESULT_PREFIX = "DOCKYARD_RESULT "
STDOUT, STDERR = 1, 2
MAX_LINE_CHARS = 1_048_576

log = logging.getLogger(__name__)


class OutputCapture:
    """Fed frames by a reader thread; flushed to `sink` by the waiting thread.

    `sink(text)` stores a chunk of log text. Stored text stops at `max_log_bytes`
    (one truncation notice is stored instead); the tail and the result line keep
    being tracked to the end.
    """

    def __init__(
        self,
        sink: Callable[[str], None],
        *,
        max_log_bytes: int,
        max_result_bytes: int,
        tail_bytes: int,
    ):
        self._sink = sink
        self._max_log_bytes = max_log_bytes
        self._max_result_bytes = max_result_bytes
        self._tail_bytes = tail_bytes
        self._lock = threading.Lock()
        self._decoders = {
            STDOUT: codecs.getincrementaldecoder("utf-8")("replace"),
            STDERR: codecs.getincrementaldecoder("utf-8")("replace"),
        }
        self._pending: list[str] = []
        self._stored_bytes = 0
        self._truncated = False
        self._tail = ""
        self._stdout_line = ""
        self._result_line: str | None = None

    def feed(self, stream: int, data: bytes) -> None:
        text = self._decoders.get(stream, self._decoders[STDERR]).decode(data)
        if text:
            self._accept(stream, text)

    def _accept(self, stream: int, text: str) -> None:
        # NOTE: Postgres text holds no NUL character: a processor printing one (binary on stdout) would
        # make its log, and with it the attempt's end, impossible to record. Shown as the replacement character.
        text = text.replace("\x00", "\ufffd")
        with self._lock:
            self._tail = (self._tail + text)[-self._tail_bytes :]
            if stream == STDOUT:
                self._scan_stdout(text)
            if self._truncated:
                return
            size = len(text.encode())
            if self._stored_bytes + size > self._max_log_bytes:
                keep = self._max_log_bytes - self._stored_bytes
                text = text.encode()[:keep].decode("utf-8", "ignore")
                text += f"\n[dockyard] log truncated at {self._max_log_bytes} bytes\n"
                self._truncated = True
            self._stored_bytes += len(text.encode())
            self._pending.append(text)

    def _scan_stdout(self, text: str) -> None:
        lines = (self._stdout_line + text).split("\n")
        self._stdout_line = lines.pop()[-MAX_LINE_CHARS:]
        for line in lines:
            if line.startswith(RESULT_PREFIX):
                self._result_line = line[len(RESULT_PREFIX) :]

    def flush(self, *, strict: bool = False) -> bool:
        """Store what arrived since the last flush; True if stored.

        If the sink fails (the database is away), the text is kept for the
        next flush, in order; the error is logged, or raised when `strict`.
        """
        text = self.take_pending()
        if not text:
            return True
        try:
            self._sink(text)
        except Exception:
            self.put_back(text)
            if strict:
                raise
            log.warning("could not store %d characters of output; keeping them for the next flush", len(text), exc_info=True)
            return False
        return True

    def take_pending(self) -> str:
        """The text not yet stored, for a caller that stores it itself (in a transaction of its own);
        `put_back` it if that fails."""
        with self._lock:
            text = "".join(self._pending)
            self._pending = []
        return text

    def put_back(self, text: str) -> None:
        """Text from `take_pending` that could not be stored: it goes first in the next flush."""
        if text:
            with self._lock:
                self._pending.insert(0, text)

    def finish(self) -> None:
        """Decode what is left (the caller stores it: `flush`, or `take_pending` in its own transaction)."""
        for stream, decoder in self._decoders.items():
            rest = decoder.decode(b"", final=True)
            if rest:
                self._accept(stream, rest)
        with self._lock:
            if self._stdout_line.startswith(RESULT_PREFIX):
                self._result_line = self._stdout_line[len(RESULT_PREFIX) :]

    def note(self, message: str) -> None:
        """Add a line of Dockyard's own to the log (even past the cap)."""
        with self._lock:
            self._pending.append(f"[dockyard] {message}\n")

    @property
    def tail(self) -> str:
        return self._tail

    @property
    def truncated(self) -> bool:
        return self._truncated

    def result(self) -> tuple[Any, str | None]:
        """The parsed DOCKYARD_RESULT value and, if the line was unusable, why."""
        line = self._result_line
        if line is None:
            return None, None
        if len(line.encode()) > self._max_result_bytes:
            return (
                None,
                f"DOCKYARD_RESULT ignored: larger than {self._max_result_bytes} bytes",
            )
        try:
            return json.loads(line), None
        except ValueError as exc:
            return None, f"DOCKYARD_RESULT ignored: not JSON ({exc})"
