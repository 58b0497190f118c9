"""The floor under `POST /v1/runs`: the least a Python service can do for a durable, confirmed submission.

A Falcon app with one route that reads the JSON body, inserts one row with
psycopg2 (a connection per thread, autocommit: one statement, one commit)
and publishes the id with pika on a confirming channel (one per thread),
then answers 201: no authentication, validation, events, tracing or
metrics. Served by gunicorn as the Procfile serves Dockyard (gthread, 2 x 8)
and driven by bench.submit's open-loop client, it shows what this machine
allows any service of this shape, beside Dockyard's own figure measured in
the same run (alternating).

    python -m bench.bare_submit [--rate 300] [--seconds 10] [--rounds 2] [--durable]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import uuid

import falcon
import pika
import psycopg2
import requests

from bench.stack import ROOT, Stack, cpu_seconds_by_command, cpu_share_line, free_port, machine_line, percentile
from bench.submit import Client, drive

TABLE = "CREATE TABLE IF NOT EXISTS bare_runs (id VARCHAR(32) PRIMARY KEY, body TEXT NOT NULL, created_at TIMESTAMP NOT NULL)"


class Submit:
    """POST /runs: insert, publish with a confirm, 201."""

    def __init__(self, database_url: str, broker_url: str, queue: str):
        self.database_url, self.broker_url, self.queue = database_url, broker_url, queue
        self.local = threading.local()

    def _channel(self):
        if getattr(self.local, "channel", None) is None:
            connection = pika.BlockingConnection(pika.URLParameters(self.broker_url))
            channel = connection.channel()
            channel.confirm_delivery()
            self.local.channel = channel
            self.local.db = psycopg2.connect(self.database_url)
            self.local.db.autocommit = True
        return self.local.channel, self.local.db

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.media
        channel, db = self._channel()
        run_id = uuid.uuid4().hex
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO bare_runs (id, body, created_at) VALUES (%s, %s, now())", (run_id, json.dumps(body)))
        channel.basic_publish("", self.queue, run_id.encode(), pika.BasicProperties(delivery_mode=2))
        resp.status = falcon.HTTP_201
        resp.media = {"id": run_id}


def create_app() -> falcon.App:
    """gunicorn's entry (`bench.bare_submit:create_app()`), configured by BARE_* variables."""
    app = falcon.App()
    app.add_route("/runs", Submit(os.environ["BARE_DATABASE_URL"], os.environ["BARE_BROKER_URL"], os.environ["BARE_QUEUE"]))
    return app


def start_bare(stack: Stack) -> str:
    stack.db.execute_sql(TABLE)
    stack.db.close()
    connection = pika.BlockingConnection(pika.URLParameters(stack.broker_url))
    connection.channel().queue_declare(f"{stack.queue}.bare", durable=True)
    connection.close()
    port = free_port()
    argv = [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--bind", f"127.0.0.1:{port}"]
    argv += ["--worker-class", "gthread", "--workers", "2", "--threads", "8", "bench.bare_submit:create_app()"]
    stack.spawn("bare", argv, BARE_DATABASE_URL=stack.database_url, BARE_BROKER_URL=stack.broker_url, BARE_QUEUE=f"{stack.queue}.bare")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.post(f"{url}/runs", json={}, timeout=2).status_code == 201:
                return url
        time.sleep(0.2)
    sys.exit(f"bench: the bare service did not start; see {stack.logs}/bare.log")


def measure(url: str, path: str, headers: dict, rate: float, seconds: float) -> str:
    body = json.dumps({"processor": "echo", "payload": {"n": 1}}).encode()

    async def run():
        client = Client(url, path, headers)
        await drive(client, rate, 2, body)  # warm-up
        before = cpu_seconds_by_command()
        measured = await drive(client, rate, seconds, body)
        return (*measured, cpu_share_line(before, cpu_seconds_by_command(), measured[2]))

    latencies, outcomes, wall, cpu = asyncio.run(run())
    ms = [x * 1000 for x in latencies] or [float("nan")]
    accepted = outcomes.get(201, 0)
    return (
        f"{accepted / wall:5.0f}/s accepted, p50 {percentile(ms, 50):6.1f} p99 {percentile(ms, 99):7.1f} ms, "
        f"errors {sum(outcomes.values()) - accepted}; cpu: {cpu}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="submissions per second (default 300)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds measured per round and service (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--durable", action="store_true", help="on the Postgres with fsync and synchronous_commit on")
    args = parser.parse_args()
    with Stack(durable=args.durable) as stack:
        print(f"machine: {machine_line()}")
        print(f"database: {stack.postgres_line()}; gunicorn 2 x 8 threads each; offered {args.rate:g}/s open loop")
        dockyard = stack.start_web(workers=2, threads=8)
        bare = start_bare(stack)
        for _ in range(args.rounds):
            print(f"  bare     {measure(bare, '/runs', {}, args.rate, args.seconds)}")
            print(f"  dockyard {measure(dockyard, '/v1/runs', stack.auth_header, args.rate, args.seconds)}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
