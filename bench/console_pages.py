"""How fast the console's Runs page answers with a long history: server time per page, on Postgres.

Seeds a fresh database with `--runs` runs (default 100,000) of two tenants,
five processors, every state and priority, made over 30 days; builds the
API as web.wsgi does (with a stub broker: the pages publish nothing), signs
a session in, and times the Runs page through falcon's test client (the
whole request inside the app, no network): unfiltered, by state, processor,
priority, a day's range, the 10th page of cursors, and one run's page.

    python -m bench.console_pages [--runs 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import statistics
import time
import uuid

import falcon.testing
import psycopg2
from dramatiq.brokers.stub import StubBroker

from actors.dispatch import Dispatcher
from bench.stack import machine_line, need, percentile
from settings import Settings
from storage.api_keys import authenticate, create_key
from storage.console_sessions import open_session
from storage.database import open_database
from storage.migrations import migrate
from storage.models import Run
from storage.processors import put_processor
from storage.run_states import RunState
from web.app import create_app

PROCESSORS = ["echo", "resize", "report", "sync", "backup"]
NEXT = re.compile(r'href="(/console/runs\?[^"]*cursor=[^"]*)" rel="next"')


def seed(runs: int) -> None:
    """Five processors, and `runs` runs of them, 90% of the tenant "default", spread over the last 30 days."""
    for name in PROCESSORS:
        spec = {"name": name, "image": f"127.0.0.1:5000/dockyard/{name}@sha256:{'a' * 64}", "command": None, "timeout_seconds": 60}
        spec |= {"cpus": 0.5, "memory_mb": 64, "pids": 32, "network": "none", "env": {}, "queue": "runs", "concurrency": None}
        put_processor({**spec, "retry": {}, "enabled": True}, actor="bench")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rng = random.Random(7)
    states = [(RunState.SUCCEEDED, 70), (RunState.FAILED, 10), (RunState.DEAD_LETTER, 3), (RunState.CANCELLED, 5), (RunState.QUEUED, 10)]
    state_choices = [s for s, weight in states for _ in range(weight)]
    batch = []
    for n in range(runs):
        created = now - dt.timedelta(seconds=rng.uniform(0, 30 * 86400))
        state = rng.choice(state_choices)
        ended = state != RunState.QUEUED
        batch.append(
            {
                "id": uuid.uuid4().hex,
                "tenant_id": "default" if rng.random() < 0.9 else "other",
                "processor": rng.choice(PROCESSORS),
                "queue": "runs",
                "state": state,
                "priority": rng.choice(["low", "normal", "normal", "normal", "high", "critical"]),
                "payload": {"n": n},
                "labels": {},
                "attempts": 1 if ended else 0,
                "max_attempts": 3,
                "timeout_seconds": 60,
                "created_at": created,
                "started_at": created + dt.timedelta(seconds=1) if ended else None,
                "finished_at": created + dt.timedelta(seconds=rng.uniform(2, 90)) if ended else None,
                "updated_at": created,
            }
        )
        if len(batch) == 5000:
            Run.insert_many(batch).execute()
            batch = []
    if batch:
        Run.insert_many(batch).execute()


def timed(client, path: str, cookies: dict, count: int) -> list[float]:
    found = client.simulate_get(path, cookies=cookies)
    assert found.status_code == 200, (path, found.status_code, found.text[:500])
    times = []
    for _ in range(count):
        began = time.perf_counter()
        client.simulate_get(path, cookies=cookies)
        times.append((time.perf_counter() - began) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the history (default 100000)")
    parser.add_argument("--requests", type=int, default=200, help="requests per page (default 200)")
    args = parser.parse_args()
    server = need("BENCH_POSTGRES_URL", "TEST_POSTGRES_URL")
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        db = open_database(f"{server.rsplit('/', 1)[0]}/{name}")
        migrate(db)
        began = time.perf_counter()
        seed(args.runs)
        db.execute_sql("ANALYZE")
        print(f"machine: {machine_line()}")
        print(f"seeded {args.runs} runs in {time.perf_counter() - began:.0f} s (Postgres)")
        _, key = create_key("default", "runs:read", actor="bench")
        token, _ = open_session(authenticate(key))
        cookies = {"dockyard_session": token}
        broker = StubBroker()
        dispatcher = Dispatcher(broker)
        client = falcon.testing.TestClient(create_app(Settings(), db=db, dispatcher=dispatcher))
        day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        until = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        tenth = "/console/runs"
        for _ in range(9):
            tenth = NEXT.search(client.simulate_get(tenth, cookies=cookies).text).group(1).replace("&amp;", "&")
        one = Run.select(Run.id).where(Run.tenant_id == "default").order_by(Run.created_at.desc()).first().id
        pages = {
            "runs, newest": "/console/runs",
            "state=failed": "/console/runs?state=failed",
            "processor=report": "/console/runs?processor=report",
            "priority=critical": "/console/runs?priority=critical",
            "a day's range": f"/console/runs?since={day}&until={until}",
            "10th page": tenth,
            "one run": f"/console/runs/{one}",
        }
        print(f"{args.requests} requests per page, server time in ms (falcon test client, one thread)")
        print(f"{'page':20} {'p50':>6} {'p95':>6} {'max':>6}")
        for label, path in pages.items():
            times = timed(client, path, cookies, args.requests)
            print(f"{label:20} {statistics.median(times):6.1f} {percentile(times, 95):6.1f} {max(times):6.1f}")
        dispatcher.close()
        db.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    os.environ.setdefault("DOCKYARD_LOG_FORMAT", "text")
    main()
