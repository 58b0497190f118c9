"""Dockyard's Grafana dashboards, as code (grafana-foundation-sdk, a dev dependency).

    python -m telemetry.dashboards            write infra/grafana/dashboards/*.json
    python -m telemetry.dashboards --check    exit 1 if a written file differs from this code

The JSON files are committed: Grafana's provisioning (infra/grafana/provisioning)
loads them, and tests evaluate every panel's query on a real Prometheus
(tests/e2e/test_dashboards.py). Every query is written to be correct for one
Dockyard or several copies of each process: it sums or takes the max over
instances, and per-queue RabbitMQ series are told from the node-wide ones by
their `queue` label, not by the scrape job's name.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

OUT = pathlib.Path(__file__).resolve().parents[1] / "infra" / "grafana" / "dashboards"
# The datasource the provisioning defines (infra/grafana/provisioning/datasources/prometheus.yml);
# each dashboard also offers a `datasource` variable to pick another Prometheus.
DATASOURCE_UID = "dockyard-prometheus"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


def q(expr: str, legend: str = "") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE).range()
    return query.legend_format(legend) if legend else query


def rate(metric: str, selector: str = "", *, by: str = "") -> str:
    """`sum [by (...)] (rate(metric{selector}[$__rate_interval]))`: a counter's per-second rate over every instance."""
    series_ = f"{metric}{{{selector}}}" if selector else metric
    return f"{f'sum by ({by}) ' if by else 'sum'}(rate({series_}[{RATE}]))"


def share(metric: str, selector: str) -> str:
    """The part of a counter's rate that `selector` picks, of all of it; 0 (not "no data") when none is picked."""
    return f"({rate(metric, selector)} or vector(0)) / {rate(metric)}"


def quantiles(histogram: str, selector: str = "", by: str = "") -> list[prometheus.Dataquery]:
    """p50, p95 and p99 of a histogram's `_bucket` series over the rate window."""
    group = f"le, {by}" if by else "le"
    return [
        q(
            f"histogram_quantile({p}, sum by ({group}) (rate({histogram}_bucket{{{selector}}}[{RATE}])))",
            f"p{round(p * 100)}" + (f" {{{{{by}}}}}" if by else ""),
        )
        for p in (0.5, 0.95, 0.99)
    ]


def series(title: str, description: str, unit: str, targets: list, *, width: int = 12, height: int = 8) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE).span(width).height(height)
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        panel = panel.with_target(target.ref_id(ref))
    return panel


def single(title: str, description: str, unit: str, target: prometheus.Dataquery, *, width: int = 4) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(4)
        .with_target(target.ref_id("A"))
    )


def board(uid: str, title: str, description: str, rows: list[tuple[str, list]], variables: list | None = None) -> gd.Dashboard:
    built = (
        gd.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["dockyard"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
        .with_variable(
            gd.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
            .current(dm.VariableOption(selected=True, text="Prometheus", value=DATASOURCE_UID))
        )
    )
    for variable in variables or []:
        built = built.with_variable(variable)
    for row_title, panels in rows:
        built = built.with_row(gd.Row(row_title))
        for panel in panels:
            built = built.with_panel(panel)
    return built


def overview() -> gd.Dashboard:
    return board(
        "dockyard-overview",
        "Dockyard / Overview",
        "Runs going in and out, how long they wait and take, what waits, and how busy the workers are.",
        [
            (
                "Now",
                [
                    single(
                        "Submissions",
                        "Runs made per second: submitted, replayed, triggered or fired.",
                        "reqps",
                        q(rate("dockyard_runs_submitted_total")),
                    ),
                    single(
                        "Run error rate",
                        "Share of runs that ended failed, timed_out or dead_letter among those that ended (cancelled ones count as ended).",
                        "percentunit",
                        q(share("dockyard_runs_finished_total", 'state=~"failed|timed_out|dead_letter"')),
                    ),
                    single(
                        "Queued runs",
                        "Runs in state queued in the database, all priorities.",
                        "short",
                        q("max(sum by (instance) (dockyard_runs_queued))"),
                    ),
                    single(
                        "Oldest queued run", "How long the oldest queued run has waited.", "s", q("max(dockyard_oldest_queued_run_seconds)")
                    ),
                    single(
                        "Dead letters waiting",
                        "Messages in the dead-letter queues (<queue>.XQ) on the broker.",
                        "short",
                        q('sum(rabbitmq_queue_messages{queue=~".+\\\\.XQ"})'),
                    ),
                    single(
                        "Busy worker threads",
                        "Threads running an attempt, as a share of all worker threads.",
                        "percentunit",
                        q("sum(dockyard_worker_threads_busy) / sum(dockyard_worker_threads)"),
                    ),
                ],
            ),
            (
                "Runs",
                [
                    series(
                        "Submissions by priority",
                        "Runs made per second.",
                        "reqps",
                        [q(rate("dockyard_runs_submitted_total", by="priority"), "{{priority}}")],
                    ),
                    series(
                        "Finishes by state",
                        "Runs reaching a final state per second.",
                        "reqps",
                        [q(rate("dockyard_runs_finished_total", by="state"), "{{state}}")],
                    ),
                    series(
                        "Run duration",
                        "From a run's first start to its final state, retries included.",
                        "s",
                        quantiles("dockyard_run_duration_seconds"),
                    ),
                    series(
                        "Pickup latency",
                        "From a run's creation to a worker claiming it: time queued.",
                        "s",
                        quantiles("dockyard_run_pickup_seconds"),
                    ),
                    series(
                        "Retries and dead letters",
                        "Attempts whose run will be tried again, and runs ending dead_letter, per second.",
                        "reqps",
                        [
                            q(rate("dockyard_retries_total"), "retries"),
                            q(rate("dockyard_runs_finished_total", 'state="dead_letter"'), "dead letters"),
                        ],
                    ),
                    series(
                        "Cancels and publish failures",
                        "Runs cancelled, and publishes the broker refused (queue full: the API answered 503).",
                        "reqps",
                        [
                            q(rate("dockyard_runs_cancelled_total"), "cancelled"),
                            q(rate("dockyard_publish_failures_total", by="reason"), "publish failed: {{reason}}"),
                        ],
                    ),
                ],
            ),
            (
                "Waiting and working",
                [
                    series(
                        "Queued runs by priority",
                        "Runs in state queued in the database.",
                        "short",
                        [q("max by (priority) (dockyard_runs_queued)", "{{priority}}")],
                    ),
                    series(
                        "Oldest queued run by priority",
                        "How long the oldest queued run of each priority has waited.",
                        "s",
                        [q("max by (priority) (dockyard_oldest_queued_run_seconds)", "{{priority}}")],
                    ),
                    series(
                        "Worker threads",
                        "Threads running an attempt, and all threads, over every worker.",
                        "short",
                        [q("sum(dockyard_worker_threads_busy)", "busy"), q("sum(dockyard_worker_threads)", "threads")],
                    ),
                    series(
                        "Quota waits",
                        "Deliveries handed back because the run's tenant or processor was at its concurrency quota, per second.",
                        "reqps",
                        [q(rate("dockyard_quota_waits_total", by="quota"), "{{quota}}")],
                    ),
                ],
            ),
        ],
    )


def processors() -> gd.Dashboard:
    one = 'processor="$processor"'
    variable = (
        gd.QueryVariable("processor")
        .label("Processor")
        .datasource(DATASOURCE)
        .query("label_values(dockyard_runs_submitted_total, processor)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    return board(
        "dockyard-processors",
        "Dockyard / Processors",
        "One processor's runs: how many, how they end, how long they wait and take, and what their containers use.",
        [
            (
                "Runs of $processor",
                [
                    series(
                        "Submissions by priority",
                        "Runs made per second.",
                        "reqps",
                        [q(rate("dockyard_runs_submitted_total", one, by="priority"), "{{priority}}")],
                    ),
                    series(
                        "Finishes by state",
                        "Runs reaching a final state per second.",
                        "reqps",
                        [q(rate("dockyard_runs_finished_total", one, by="state"), "{{state}}")],
                    ),
                    series(
                        "Attempts by outcome",
                        "Attempts ended per second.",
                        "reqps",
                        [q(rate("dockyard_attempts_total", one, by="outcome"), "{{outcome}}")],
                    ),
                    series(
                        "Retries",
                        "Attempts whose run will be tried again, per second.",
                        "reqps",
                        [q(rate("dockyard_retries_total", one), "retries")],
                    ),
                    series(
                        "Run duration", "From the first start to the final state.", "s", quantiles("dockyard_run_duration_seconds", one)
                    ),
                    series(
                        "Pickup latency", "Time queued before a worker claimed the run.", "s", quantiles("dockyard_run_pickup_seconds", one)
                    ),
                ],
            ),
            (
                "Containers of $processor",
                [
                    series(
                        "Container start",
                        "From asking the engine to create the container to it running.",
                        "s",
                        quantiles("dockyard_container_start_seconds", one),
                        width=8,
                    ),
                    series(
                        "CPU per attempt",
                        "CPU seconds each attempt's container used.",
                        "s",
                        quantiles("dockyard_attempt_cpu_seconds", one),
                        width=8,
                    ),
                    series(
                        "Peak memory per attempt",
                        "The most memory each attempt's container used.",
                        "bytes",
                        quantiles("dockyard_attempt_peak_memory_bytes", one),
                        width=8,
                    ),
                ],
            ),
        ],
        [variable],
    )


def api() -> gd.Dashboard:
    count = "dockyard_http_request_duration_seconds_count"
    return board(
        "dockyard-api",
        "Dockyard / API",
        "Requests to the HTTP API by route template, method and status, and their latency.",
        [
            (
                "Traffic",
                [
                    single("Requests", "Requests per second.", "reqps", q(rate(count)), width=6),
                    single(
                        "Server errors",
                        "Share of requests answered 5xx.",
                        "percentunit",
                        q(share(count, 'status=~"5.."')),
                        width=6,
                    ),
                    single(
                        "Refused",
                        "Share of requests answered 429 (rate limit) or 503 (queue full, broker or database away).",
                        "percentunit",
                        q(share(count, 'status=~"429|503"')),
                        width=6,
                    ),
                    single(
                        "p99 latency",
                        "Of all requests.",
                        "s",
                        q(f"histogram_quantile(0.99, sum by (le) (rate(dockyard_http_request_duration_seconds_bucket[{RATE}])))"),
                        width=6,
                    ),
                    series(
                        "Requests by route",
                        "Requests per second.",
                        "reqps",
                        [q(rate(count, by="method, route"), "{{method}} {{route}}")],
                    ),
                    series(
                        "Responses by status",
                        "Responses per second.",
                        "reqps",
                        [q(rate(count, by="status"), "{{status}}")],
                    ),
                    series(
                        "Errors by route and status",
                        "4xx and 5xx responses per second: 404 for unknown ids, 422 for invalid specs, 429 over a rate limit, "
                        "503 when the queue is full or a service away.",
                        "reqps",
                        [q(rate(count, 'status=~"[45].."', by="route, status"), "{{status}} {{route}}")],
                        width=24,
                    ),
                ],
            ),
            (
                "Latency",
                [
                    series("Latency", "All requests.", "s", quantiles("dockyard_http_request_duration_seconds")),
                    series(
                        "p95 latency by route",
                        "",
                        "s",
                        [
                            q(
                                "histogram_quantile(0.95, sum by (le, method, route) "
                                f"(rate(dockyard_http_request_duration_seconds_bucket[{RATE}])))",
                                "{{method}} {{route}}",
                            )
                        ],
                    ),
                    series(
                        "Database pool",
                        "Postgres connections in use and the pool's size, per process type (absent on SQLite).",
                        "short",
                        [
                            q('sum by (job) (dockyard_db_pool_connections{state="in_use"})', "in use: {{job}}"),
                            q("sum by (job) (dockyard_db_pool_max_connections)", "max: {{job}}"),
                        ],
                        width=24,
                    ),
                ],
            ),
        ],
    )


def scheduler() -> gd.Dashboard:
    return board(
        "dockyard-scheduler",
        "Dockyard / Scheduler",
        "Cron fires, the fire times that made no run, the elected leader and the housekeeping it sends.",
        [
            (
                "Leader",
                [
                    single(
                        "Leaders",
                        "Scheduler processes that lead now: 1 is right, 0 means schedules are not firing.",
                        "short",
                        q("sum(dockyard_scheduler_leader)"),
                        width=6,
                    ),
                    single(
                        "Leader changes",
                        "Times a scheduler became the leader over the time range.",
                        "short",
                        q("sum(increase(dockyard_scheduler_leadership_acquired_total[$__range]))"),
                        width=6,
                    ),
                    series(
                        "Leader by process",
                        "1 while a process leads.",
                        "short",
                        [q("max by (instance) (dockyard_scheduler_leader)", "{{instance}}")],
                    ),
                ],
            ),
            (
                "Fires",
                [
                    series(
                        "Fires by kind",
                        "Runs fired per minute: on time (cron) or late within the catch-up window (catchup).",
                        "short",
                        [q(rate("dockyard_schedule_fires_total", by="kind") + " * 60", "{{kind}}")],
                        width=8,
                    ),
                    series(
                        "Skips by reason",
                        "Fire times that made no run, per minute: overlap, missed, not_fired.",
                        "short",
                        [q(rate("dockyard_schedule_skips_total", by="reason") + " * 60", "{{reason}}")],
                        width=8,
                    ),
                    series(
                        "Housekeeping sent",
                        "Housekeeping messages the leader sent, per hour, by actor.",
                        "short",
                        [q(rate("dockyard_housekeeping_sent_total", by="actor") + " * 3600", "{{actor}}")],
                        width=8,
                    ),
                ],
            ),
        ],
    )


def rabbitmq() -> gd.Dashboard:
    per_queue = 'queue=~".+"'  # the per-object endpoint's series; the node-wide ones have no queue label
    return board(
        "dockyard-rabbitmq",
        "Dockyard / RabbitMQ",
        "The broker as its rabbitmq_prometheus plugin (port 15692) reports it: messages per queue, rates, "
        "connections and consumers, resources.",
        [
            (
                "Queues",
                [
                    series(
                        "Ready by queue",
                        "Messages waiting to be delivered.",
                        "short",
                        [q(f"sum by (queue) (rabbitmq_queue_messages_ready{{{per_queue}}})", "{{queue}}")],
                    ),
                    series(
                        "Unacknowledged by queue",
                        "Messages delivered and not yet acknowledged: runs in progress, and retries held until due.",
                        "short",
                        [q(f"sum by (queue) (rabbitmq_queue_messages_unacked{{{per_queue}}})", "{{queue}}")],
                    ),
                    series(
                        "Consumers by queue",
                        "Worker channels consuming each queue.",
                        "short",
                        [q(f"sum by (queue) (rabbitmq_queue_consumers{{{per_queue}}})", "{{queue}}")],
                    ),
                    series(
                        "Dead letters",
                        "Messages in the dead-letter queues.",
                        "short",
                        [q('sum by (queue) (rabbitmq_queue_messages{queue=~".+\\\\.XQ"})', "{{queue}}")],
                    ),
                ],
            ),
            (
                "Traffic",
                [
                    series(
                        "Messages",
                        "Published, confirmed, delivered and acknowledged per second, node-wide.",
                        "reqps",
                        [
                            q(rate("rabbitmq_global_messages_received_total"), "published"),
                            q(rate("rabbitmq_global_messages_confirmed_total"), "confirmed"),
                            q(rate("rabbitmq_global_messages_delivered_total"), "delivered"),
                            q(rate("rabbitmq_global_messages_acknowledged_total"), "acknowledged"),
                        ],
                    ),
                    series(
                        "Connections, channels, consumers",
                        "Open now, node-wide.",
                        "short",
                        [
                            q("sum(rabbitmq_connections)", "connections"),
                            q("sum(rabbitmq_channels)", "channels"),
                            q("sum(rabbitmq_consumers)", "consumers"),
                        ],
                    ),
                ],
            ),
            (
                "Resources",
                [
                    series(
                        "Free disk",
                        "Free disk space and the limit below which the broker blocks publishers.",
                        "bytes",
                        [
                            q("min by (instance) (rabbitmq_disk_space_available_bytes)", "free {{instance}}"),
                            q("max by (instance) (rabbitmq_disk_space_available_limit_bytes)", "limit {{instance}}"),
                        ],
                        width=8,
                    ),
                    series(
                        "Memory",
                        "Resident memory of the broker.",
                        "bytes",
                        [q("sum by (instance) (rabbitmq_process_resident_memory_bytes)", "{{instance}}")],
                        width=8,
                    ),
                    series(
                        "Alarms",
                        "1 while a resource alarm blocks publishers.",
                        "short",
                        [
                            q("max(rabbitmq_alarms_free_disk_space_watermark)", "disk"),
                            q("max(rabbitmq_alarms_memory_used_watermark)", "memory"),
                            q("max(rabbitmq_alarms_file_descriptor_limit)", "file descriptors"),
                        ],
                        width=8,
                    ),
                ],
            ),
        ],
    )


DASHBOARDS = {"overview": overview, "processors": processors, "api": api, "scheduler": scheduler, "rabbitmq": rabbitmq}


def render(name: str) -> str:
    """One dashboard's JSON as written to infra/grafana/dashboards/<name>.json."""
    built = DASHBOARDS[name]().build()
    # Panel ids in the order of the grid, rows included: stable across runs and unique.
    data = json.loads(json.dumps(built, cls=JSONEncoder))
    for number, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = number
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m telemetry.dashboards", description="Write Dockyard's Grafana dashboards.")
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if a file differs from what this code writes")
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help=f"directory of the JSON files (default: {OUT})")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run python -m telemetry.dashboards): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
