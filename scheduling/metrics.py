"""The scheduler process's Prometheus metrics (served on DOCKYARD_SCHEDULER_METRICS_PORT by telemetry.metrics.serve_metrics)."""

from __future__ import annotations

import prometheus_client

from actors.periodic import HOUSEKEEPING

FIRES = prometheus_client.Counter(
    "dockyard_schedule_fires_total",
    "Runs fired by schedules' cron: on time (cron) or late, within the catch-up window (catchup).",
    ["kind"],
)
SKIPS = prometheus_client.Counter(
    "dockyard_schedule_skips_total",
    "Schedule fire times that made no run, by reason: overlap (forbid), missed (outside the catch-up window, "
    "or coalesced into a later fire), not_fired (processor missing or disabled).",
    ["reason"],
)
LEADER = prometheus_client.Gauge("dockyard_scheduler_leader", "1 while this scheduler process leads, else 0.")
LEADER_CHANGES = prometheus_client.Counter("dockyard_scheduler_leadership_acquired_total", "Times this process became the leader.")
HOUSEKEEPING_SENT = prometheus_client.Counter(
    "dockyard_housekeeping_sent_total", "Housekeeping messages the leader sent, by actor.", ["actor"]
)

for _kind in ("cron", "catchup"):
    FIRES.labels(_kind)
for _reason in ("overlap", "missed", "not_fired"):
    SKIPS.labels(_reason)
for _actor in HOUSEKEEPING:
    HOUSEKEEPING_SENT.labels(_actor)
