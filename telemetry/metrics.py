"""Serving a process's Prometheus metrics."""

from __future__ import annotations

import logging

import prometheus_client

log = logging.getLogger("metrics")


def serve_metrics(port: int, setting: str) -> bool:
    """Entry points call this once: Prometheus /metrics on `port` (0: off); a port in use is logged, not fatal."""
    if not port:
        return False
    try:
        prometheus_client.start_http_server(port)
    except OSError as exc:
        log.warning("metrics not served: port %d: %s (set %s)", port, exc, setting)
        return False
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
    return True
