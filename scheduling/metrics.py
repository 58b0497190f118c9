"""The scheduler process's Prometheus metrics (served on DOCKYARD_SCHEDULER_METRICS_PORT by telemetry.metrics.serve_metrics)."""

from __future__ import annotations

import logging

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actors.periodic import HOUSEKEEPING
from storage import runs as run_store
from storage import workers
from storage.database import release_connection
from storage.models import utcnow
from storage.specs import Priority

log = logging.getLogger(__name__)

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


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape. Nothing is exported while the database does not answer,
    so an alert on these series sees them absent rather than stale."""

    what = "database gauges"

    def read(self):
        raise NotImplementedError

    def families(self, data=None) -> list[GaugeMetricFamily]:
        """The metric families, with their samples from `data` (what `read` returned) if given."""
        raise NotImplementedError

    def describe(self):
        return self.families()

    def collect(self):
        try:
            data = self.read()
        except Exception as exc:
            log.warning("could not read %s for /metrics: %s", self.what, exc)
            return
        finally:
            release_connection()
        yield from self.families(data)


class QueuedRuns(DatabaseCollector):
    """Runs waiting in the database, by priority: how many, and how long the oldest has waited (0 when none waits)."""

    what = "queued runs"

    def read(self):
        return run_store.queued_by_priority(), utcnow()

    def families(self, data=None) -> list[GaugeMetricFamily]:
        count = GaugeMetricFamily("dockyard_runs_queued", "Runs in state queued, by priority.", labels=["priority"])
        oldest = GaugeMetricFamily(
            "dockyard_oldest_queued_run_seconds",
            "How long the oldest queued run of each priority has waited since it was created; 0 when none waits.",
            labels=["priority"],
        )
        if data is not None:
            waiting, now = data
            for priority in Priority:
                n, first = waiting.get(priority.value, (0, None))
                count.add_metric([priority.value], n)
                oldest.add_metric([priority.value], max(0.0, (now - first).total_seconds()) if first else 0.0)
        return [count, oldest]


class WorkerCount(DatabaseCollector):
    """Workers by state (live, lost, stopped within the last day: storage/workers.py)."""

    what = "workers"

    def read(self):
        return workers.count_by_state()

    def families(self, data=None) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "dockyard_workers", "Worker processes by state: live, lost (silent for 3 heartbeats), stopped.", labels=["state"]
        )
        for state, n in (data or {}).items():
            family.add_metric([state.value], n)
        return [family]
