"""gunicorn's own log lines (its master and workers) in Dockyard's format:
`gunicorn --logger-class web.gunicorn_logging.DockyardLogger` (the Procfile's `web`)."""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

from telemetry.logs import ContextFilter, formatter, resolve_format


class DockyardLogger(Logger):
    """gunicorn's logger, its handlers writing DOCKYARD_LOG_FORMAT lines (JSON outside a terminal)."""

    def _set_handler(self, log, output, fmt, stream=None):
        super()._set_handler(log, output, fmt, stream)
        handler = self._get_gunicorn_handler(log)
        if handler is None:
            return
        # NOTE: read here, not through Settings: gunicorn's master loads this class before the app reads its settings.
        chosen = resolve_format(os.environ.get("DOCKYARD_LOG_FORMAT", "auto"), getattr(handler, "stream", None))
        handler.setFormatter(formatter(chosen))
        handler.addFilter(ContextFilter())
