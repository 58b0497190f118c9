"""gunicorn settings of the Procfile's web process: `gunicorn -c python:web.gunicorn_config ...`.

- Dockyard's log format for gunicorn's own lines (web/gunicorn_logging.py).
- Metrics from every worker on each worker's /metrics: prometheus_client's
  multiprocess mode, in PROMETHEUS_MULTIPROC_DIR (by default a fresh
  directory of this master's). The directory is emptied when the master
  starts, a dead worker's live gauges are dropped, and a directory of our
  own is removed at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile

logger_class = "web.gunicorn_logging.DockyardLogger"

# NOTE: set before anything imports prometheus_client: it picks its value
# store (in memory, or files in this directory) when first imported, and the
# workers gunicorn forks inherit that choice.
_own_directory = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_directory:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dockyard-web-metrics-")
_directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server) -> None:
    """Start from an empty directory: files a previous master left would be counted again."""
    os.makedirs(_directory, exist_ok=True)
    for name in os.listdir(_directory):
        if name.endswith(".db"):
            os.remove(os.path.join(_directory, name))


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_directory:
        shutil.rmtree(_directory, ignore_errors=True)
