"""The worker's and the dispatcher's Prometheus series: what happened to runs, recorded where it happens.

Every label is bounded: processor names (an operator registers them),
priorities, states and outcomes (enums); never a run id or a tenant.
docs/metrics.md lists each series; tests/e2e/test_metrics.py holds the two
to each other.
"""

from __future__ import annotations

import prometheus_client

from storage.quotas import PROCESSOR, TENANT
from storage.run_states import TERMINAL, AttemptOutcome, RunState

# Seconds: a run takes from a blink to the hour DOCKYARD_MAX_TIMEOUT_SECONDS allows.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
PICKUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, float("inf"))
START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))
PUBLISH_FAILURE_REASONS = ("queue_full", "broker_error")

RUNS_SUBMITTED = prometheus_client.Counter(
    "dockyard_runs_submitted_total",
    "Runs made: submitted, replayed or fired (a fire's run the broker refused is kept for the outbox and counted).",
    ["processor", "priority"],
)
PUBLISH_FAILURES = prometheus_client.Counter(
    "dockyard_publish_failures_total",
    "Publishes of a run's message the broker refused: queue_full (the queue's length limit) or broker_error.",
    ["reason"],
)
ATTEMPTS = prometheus_client.Counter("dockyard_attempts_total", "Attempts ended, by outcome.", ["processor", "outcome"])
RETRIES = prometheus_client.Counter("dockyard_retries_total", "Attempts whose run will be tried again.", ["processor"])
RUNS_FINISHED = prometheus_client.Counter(
    "dockyard_runs_finished_total", "Runs that reached a final state through a worker.", ["processor", "state"]
)
RUN_DURATION = prometheus_client.Histogram(
    "dockyard_run_duration_seconds",
    "From a run's first start to its final state, retries and backoffs included.",
    ["processor", "state"],
    buckets=DURATION_BUCKETS,
)
PICKUP = prometheus_client.Histogram(
    "dockyard_run_pickup_seconds",
    "From a run's creation to a worker claiming it for its first attempt (time spent queued).",
    ["processor", "priority"],
    buckets=PICKUP_BUCKETS,
)
CONTAINER_START = prometheus_client.Histogram(
    "dockyard_container_start_seconds",
    "From asking the engine to create an attempt's container to the container running.",
    ["processor"],
    buckets=START_BUCKETS,
)
QUOTA_WAITS = prometheus_client.Counter(
    "dockyard_quota_waits_total",
    "Deliveries handed back because the run's tenant or processor was at its concurrency quota.",
    ["quota"],
)
ATTEMPT_CPU = prometheus_client.Histogram(
    "dockyard_attempt_cpu_seconds",
    "CPU seconds an attempt's container used (where measured: actors/usage.py).",
    ["processor"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, float("inf")),
)
ATTEMPT_MEMORY = prometheus_client.Histogram(
    "dockyard_attempt_peak_memory_bytes",
    "The highest memory an attempt's container used (where measured: actors/usage.py).",
    ["processor"],
    buckets=(*(mb * 2**20 for mb in (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)), float("inf")),
)
THREADS = prometheus_client.Gauge("dockyard_worker_threads", "Worker threads that run attempts (DOCKYARD_WORKER_THREADS).")
THREADS_BUSY = prometheus_client.Gauge("dockyard_worker_threads_busy", "Worker threads running an attempt now.")


def busy_threads() -> int:
    """Threads of this process running an attempt now (what the worker's heartbeat reports)."""
    return int(THREADS_BUSY.collect()[0].samples[0].value)


for _reason in PUBLISH_FAILURE_REASONS:
    PUBLISH_FAILURES.labels(reason=_reason)
for _quota in (TENANT, PROCESSOR):
    QUOTA_WAITS.labels(quota=_quota)


_submitted: dict[tuple[str, str], prometheus_client.Counter] = {}


def run_submitted(processor: str, priority: str) -> None:
    """Count a run made (children kept: .labels() on every submit costs more than the increment)."""
    child = _submitted.get((processor, priority))
    if child is None:
        child = _submitted.setdefault((processor, priority), RUNS_SUBMITTED.labels(processor=processor, priority=priority))
    child.inc()


def attempt_ended(processor: str, outcome: AttemptOutcome, next_state: RunState | None, run_seconds: float | None) -> None:
    """Count an attempt's end and what it made of its run (`next_state` None: another writer ended the run)."""
    ATTEMPTS.labels(processor=processor, outcome=outcome).inc()
    if next_state == RunState.RETRYING:
        RETRIES.labels(processor=processor).inc()
    elif next_state in TERMINAL:
        RUNS_FINISHED.labels(processor=processor, state=next_state).inc()
        if run_seconds is not None:
            RUN_DURATION.labels(processor=processor, state=next_state).observe(run_seconds)
