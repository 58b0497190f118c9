"""A long history on Postgres: run lists and reads at a million runs, and retention deleting half of them under load.

Seeds a fresh database (through bench.stack) with `--runs` runs (default
1,000,000) with what a real history has: their events (queued, running and
the end), an attempt for each started run and two log chunks per attempt.
`--expired` of them (default half) ended before the retention period.
Two tenants (90% the benchmark key's), five processors, a fifth of the
runs fired by 40 schedules, every state and priority.

Then, through gunicorn as the Procfile runs it, over one keep-alive
connection: `GET /v1/runs` newest first, by state, by processor, by
schedule, the 50th cursor page, and `GET /v1/runs/{id}`; each `--requests`
times, p50/p95/max. Last, submissions at `--rate` (open loop) for a few
seconds alone and then while retention deletes the expired runs in its
paced batches (storage.retention, as the housekeeping actor calls it, without its time budget): the
submissions' latency in both phases and how long retention took.

    python -m bench.history [--runs 1000000] [--expired 500000] [--requests 200] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import threading
import time

import requests

from bench.stack import Stack, machine_line, percentile
from bench.submit import Client, drive
from settings import Settings
from storage import retention
from storage.migrations import V12_RUN_LISTS

CHUNK = 100_000
RETENTION_DAYS = Settings().retention_days

# One statement per chunk of run numbers [%(first)s, %(last)s]: runs numbered below %(expired)s ended
# 60-90 days ago, the others in the last 30 days. Ids are md5 of the number, so they are spread like
# uuid4's. Each table is filled from the rows the previous insert returned: no lookups, no joins.
SEED = """
WITH made AS (
INSERT INTO runs (id, tenant_id, processor, queue, state, priority, payload, labels, attempts, max_attempts,
                  timeout_seconds, result, exit_code, schedule_id, scheduled_for, created_at, published_at,
                  started_at, finished_at, updated_at)
SELECT md5(g::text), CASE WHEN mod(g, 10) = 0 THEN 'other' ELSE 'default' END,
       (%(processors)s)[1 + mod(g * 7, 5)], %(queue)s, s.state,
       (ARRAY['low', 'normal', 'normal', 'normal', 'high', 'critical'])[1 + mod(g * 11, 6)],
       '{"n": ' || g || '}', '{}', CASE WHEN s.state = 'queued' THEN 0 ELSE 1 END, 3, 60,
       CASE WHEN s.state = 'succeeded' THEN '{"ok": true}' END, CASE WHEN s.state = 'failed' THEN 1 END,
       CASE WHEN mod(g, 5) = 0 THEN 's' || mod(g, 40) END,
       CASE WHEN mod(g, 5) = 0 THEN timestamp '2000-01-01' + g * interval '1 s' END,
       t.created, t.created, CASE WHEN s.state <> 'queued' THEN t.created + interval '1 s' END,
       CASE WHEN s.state NOT IN ('queued', 'running') THEN t.created + interval '3 s' END, t.created
FROM generate_series(%(first)s, %(last)s) g
CROSS JOIN LATERAL (SELECT CASE WHEN mod(g * 13, 100) < 75 THEN 'succeeded' WHEN mod(g * 13, 100) < 87 THEN 'failed'
                               WHEN mod(g * 13, 100) < 90 THEN 'dead_letter' WHEN mod(g * 13, 100) < 95 THEN 'cancelled'
                               WHEN mod(g * 13, 100) < 98 OR g < %(expired)s THEN 'queued' ELSE 'running' END AS state) s
CROSS JOIN LATERAL (SELECT CASE WHEN g < %(expired)s
                                THEN %(now)s - interval '60 days' - (g * 2592000.0 / %(expired)s) * interval '1 s'
                                ELSE %(now)s - ((%(runs)s - g) * 2592000.0 / %(recent)s) * interval '1 s' END AS created) t
RETURNING id, state, created_at, started_at, finished_at, exit_code
), events AS (
INSERT INTO run_events (run_id, from_state, to_state, reason, at)
SELECT made.id, e.from_state, e.to_state, e.reason, made.created_at + e.n * interval '1 s'
FROM made CROSS JOIN LATERAL (VALUES (0, NULL, 'queued', 'submitted'), (1, 'queued', 'running', 'claimed'),
                                     (3, 'running', made.state, NULL)) AS e (n, from_state, to_state, reason)
WHERE e.n = 0 OR (e.n = 1 AND made.state <> 'queued') OR (e.n = 3 AND made.finished_at IS NOT NULL)
), attempts AS (
INSERT INTO run_attempts (run_id, number, worker, container_id, started_at, finished_at, exit_code, outcome, log_tail)
SELECT id, 1, 'bench@host', md5(id), started_at, finished_at, exit_code,
       CASE WHEN state = 'succeeded' THEN 'succeeded' WHEN finished_at IS NOT NULL THEN 'failed' END,
       'processing ' || id || E'\\ndone'
FROM made WHERE started_at IS NOT NULL
RETURNING run_id, started_at
)
INSERT INTO run_log_chunks (run_id, attempt, data, at)
SELECT run_id, 1, repeat('a line the processor wrote, as most are, of some length; ', 4) || c, started_at
FROM attempts CROSS JOIN generate_series(1, 2) c
"""
# Expired runs that are still queued never finished, so retention keeps them, as it would.


def seed(stack: Stack, runs: int, expired: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    processors = [name for (name,) in stack.db.execute_sql("SELECT name FROM processors ORDER BY name LIMIT 5")]
    processors = (processors * 5)[:5]
    connection = stack.db.connection()
    for first in range(0, runs, CHUNK):
        began = time.perf_counter()
        values = {"first": first, "last": min(first + CHUNK, runs) - 1, "expired": expired, "runs": runs}
        values |= {"recent": max(runs - expired, 1), "now": now, "queue": stack.queue, "processors": processors}
        with connection.cursor() as cursor:
            cursor.execute(SEED, values)
        connection.commit()
        print(f"  seeded runs {first}..{values['last']} in {time.perf_counter() - began:.1f} s", flush=True)
    # As a history that grew over months would be: vacuumed, analysed, its pages written out.
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    connection.autocommit = False
    stack.db.close()


def rebuild_run_list_indexes(stack: Stack) -> float:
    """Drop the run-list indexes of migration 12 and build them again, as the migration does; return the seconds."""
    statements = [s.strip() for s in V12_RUN_LISTS.split(";") if s.strip().startswith("CREATE INDEX")]
    for statement in statements:
        stack.db.execute_sql("DROP INDEX " + statement.split()[2])
    began = time.perf_counter()
    with stack.db.atomic():
        for statement in statements:
            stack.db.execute_sql(statement)
    seconds = time.perf_counter() - began
    stack.db.close()
    return seconds


def counts(stack: Stack) -> str:
    tables = ("runs", "run_events", "run_attempts", "run_log_chunks")
    sizes = [stack.db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables]
    total = stack.db.execute_sql("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    stack.db.close()
    return ", ".join(f"{size:,} {table}" for table, size in zip(tables, sizes, strict=True)) + f"; database {total}"


def timed_gets(session: requests.Session, url: str, count: int) -> list[float]:
    assert session.get(url, timeout=10).status_code == 200, url
    times = []
    for _ in range(count):
        began = time.perf_counter()
        answer = session.get(url, timeout=10)
        times.append((time.perf_counter() - began) * 1000)
        answer.raise_for_status()
    return times


def nth_page(session: requests.Session, base: str, n: int) -> str:
    path = f"{base}/v1/runs"
    for _ in range(n - 1):
        cursor = session.get(path, timeout=10).json()["next_cursor"]
        path = f"{base}/v1/runs?cursor={cursor}"
    return path


def submissions(url: str, auth: dict, rate: float, seconds: float) -> list[float]:
    body = json.dumps({"processor": "echo", "payload": {"n": 1}}).encode()
    latencies, outcomes, _ = asyncio.run(drive(Client(url, "/v1/runs", auth), rate, seconds, body))
    if set(outcomes) != {201}:
        print(f"  submissions not accepted: {dict(outcomes)}")
    return [x * 1000 for x in latencies]


def latency_line(ms: list[float]) -> str:
    return (
        f"{len(ms)} accepted, p50 {percentile(ms, 50):.1f} p95 {percentile(ms, 95):.1f} p99 {percentile(ms, 99):.1f} max {max(ms):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the history (default 1000000)")
    parser.add_argument("--expired", type=int, help="of which ended before the retention period (default half)")
    parser.add_argument("--requests", type=int, default=200, help="requests per list (default 200)")
    parser.add_argument("--rate", type=float, default=200, help="submissions per second while retention works (default 200)")
    parser.add_argument("--batch", type=int, default=retention.BATCH, help=f"runs per retention batch (default {retention.BATCH})")
    parser.add_argument(
        "--pause-ratio",
        type=float,
        default=retention.PAUSE_RATIO,
        help=f"retention's pause per batch, as a share of the batch's time (default {retention.PAUSE_RATIO:g})",
    )
    args = parser.parse_args()
    expired = args.runs // 2 if args.expired is None else args.expired
    with Stack() as stack:
        print(f"machine: {machine_line()}")
        print(f"seeding {args.runs:,} runs ({expired:,} expired) on Postgres")
        began = time.perf_counter()
        seed(stack, args.runs, expired)
        print(f"seeded in {time.perf_counter() - began:.0f} s: {counts(stack)}")
        print(f"migration 12's indexes built on this history in {rebuild_run_list_indexes(stack):.0f} s")

        url = stack.start_web(workers=2, threads=8)
        session = requests.Session()
        session.headers.update(stack.auth_header)
        rare = stack.db.execute_sql("SELECT name FROM processors ORDER BY name LIMIT 1").fetchone()[0]
        stack.db.close()
        one = session.get(f"{url}/v1/runs?state=succeeded", timeout=10).json()["items"][0]["id"]
        lists = {
            "newest first": f"{url}/v1/runs",
            "state=failed": f"{url}/v1/runs?state=failed",
            f"processor={rare}": f"{url}/v1/runs?processor={rare}",
            "schedule_id=s5": f"{url}/v1/runs?schedule_id=s5",
            "state=running": f"{url}/v1/runs?state=running",
            "the 50th page": nth_page(session, url, 50),
            "one run": f"{url}/v1/runs/{one}",
        }
        print(f"{args.requests} requests each, one keep-alive connection, gunicorn 2 x 8 threads; ms")
        print(f"{'request':16} {'p50':>6} {'p95':>6} {'max':>6}")
        for label, path in lists.items():
            times = timed_gets(session, path, args.requests)
            print(f"{label:16} {statistics.median(times):6.1f} {percentile(times, 95):6.1f} {max(times):6.1f}")

        submissions(url, stack.auth_header, args.rate, 2)  # warm-up: connections, caches
        print(f"submissions at {args.rate:g}/s, open loop:")
        print(f"  alone, 10 s: {latency_line(submissions(url, stack.auth_header, args.rate, 10))}")
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=RETENTION_DAYS)
        result = {}

        def retain() -> None:
            began = time.perf_counter()
            result["deleted"], _ = retention.delete_runs_ended_before(
                cutoff, args.batch, pause_ratio=args.pause_ratio, budget_seconds=float("inf")
            )
            result["seconds"] = time.perf_counter() - began
            stack.db.close()

        worker = threading.Thread(target=retain)
        worker.start()
        during: list[float] = []
        while worker.is_alive():
            during += submissions(url, stack.auth_header, args.rate, 5)
        worker.join()
        print(f"  while retention worked (batches of {args.batch}, pause x{args.pause_ratio:g}): {latency_line(during)}")
        deleted, seconds = result["deleted"], result["seconds"]
        print(f"retention: deleted {deleted:,} runs in {seconds:.0f} s ({deleted / seconds:.0f} runs/s)")
        print(f"after retention: {counts(stack)}")


if __name__ == "__main__":
    main()
