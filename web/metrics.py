"""The API's Prometheus series: each request's latency by route template, method and status, and
/metrics across every gunicorn worker (prometheus_client's multiprocess mode; web/gunicorn_config.py
prepares its directory)."""

from __future__ import annotations

import os
import time

import falcon
import prometheus_client
from prometheus_client import multiprocess

REQUESTS = prometheus_client.Histogram(
    "dockyard_http_request_duration_seconds",
    "API requests by route template, method and status, and how long each took to answer.",
    ["route", "method", "status"],
)
# A path no route matched: one label value, whatever the path was.
UNMATCHED = "unmatched"


class RequestMetrics:
    """Falcon middleware (first in the list, so its response step runs last): one observation per request."""

    def __init__(self):
        # (route, method, status) -> the histogram's child: .labels() on every request costs more than the observation.
        self._children: dict[tuple[str, str, str], prometheus_client.metrics.Histogram] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "metrics_started", None)
        if started is None:
            return
        key = (req.uri_template or UNMATCHED, req.method, str(resp.status_code))
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, REQUESTS.labels(*key))
        child.observe(time.perf_counter() - started)


def exposition() -> bytes:
    """This process's series, or every gunicorn worker's when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return prometheus_client.generate_latest(registry)
    return prometheus_client.generate_latest()
