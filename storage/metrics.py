"""Storage's Prometheus series: the connection pool, the API's group commits, and runs cancelled (cancel is storage's one door).

Gauges sum over live processes in gunicorn's multiprocess mode (livesum)."""

from __future__ import annotations

import prometheus_client

POOL_CONNECTIONS = prometheus_client.Gauge(
    "dockyard_db_pool_connections",
    "Postgres pool connections: in_use (checked out by a thread) or idle (open, waiting in the pool).",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_MAX = prometheus_client.Gauge(
    "dockyard_db_pool_max_connections", "The most connections the Postgres pool opens (its size).", multiprocess_mode="livesum"
)
RUNS_CANCELLED = prometheus_client.Counter(
    "dockyard_runs_cancelled_total", "Runs cancelled (by request or a schedule's replace).", ["processor"]
)
GROUP_COMMIT_RUNS = prometheus_client.Histogram(
    "dockyard_group_commit_runs",
    "Runs inserted by one statement of the API's group commit (1 when submissions do not overlap).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
