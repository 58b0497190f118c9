"""Open-loop submission benchmark: POST /v1/runs at a fixed rate.

Starts gunicorn as the Procfile does (gthread workers) on a fresh Postgres
database and its own RabbitMQ queue, with no worker consuming, then sends
submissions on a fixed schedule whatever the server's pace (open loop: a slow
answer does not slow the sender, and each latency is measured from the moment
the request was due, so queueing in front of the server is counted).

    python -m bench.submit [--rate 1000] [--seconds 10] [--web-workers 2] [--threads 8] [--traced]

Prints accepted/s, p50/p95/p99/max latency and errors, then checks that
every accepted run has its row and its message in the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from urllib.parse import urlsplit

import pika
import pika.exceptions
import requests

from actors.broker import level_queues
from bench.stack import Stack, cpu_seconds_by_command, cpu_share_line, free_port, machine_line, percentile
from storage.models import Run

MAX_CONNECTIONS = 256


class Client:
    """A minimal HTTP/1.1 keep-alive client: enough for one POST shape, cheap enough not to be the bottleneck."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str] | None = None, max_connections: int = MAX_CONNECTIONS):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = path
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.slots = asyncio.Semaphore(max_connections)  # a request due while all are busy waits (and its wait is counted)

    async def post(self, body: bytes) -> int:
        async with self.slots:
            while self.idle:
                reader, writer = self.idle.pop()
                try:
                    return await self._exchange(reader, writer, body, reused=True)
                except _StaleConnection:
                    continue  # the server closed it while idle (keep-alive timeout): as any client, try another
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.open += 1
            return await self._exchange(reader, writer, body)

    async def _exchange(self, reader, writer, body: bytes, reused: bool = False) -> int:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            await reader.readexactly(int(fields.get("content-length", "0")))
        except asyncio.IncompleteReadError as exc:
            writer.close()
            self.open -= 1
            if not exc.partial:
                raise _StaleConnection from exc
            raise
        except ConnectionResetError as exc:
            writer.close()
            self.open -= 1
            if reused:  # reset before any answer on a connection that sat idle: closed by the server meanwhile
                raise _StaleConnection from exc
            raise
        except (OSError, ValueError):
            writer.close()
            self.open -= 1
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
            self.open -= 1
        else:
            self.idle.append((reader, writer))
        return status


class _StaleConnection(Exception):
    """A kept-alive connection closed before any byte of the answer."""


async def drive(client: Client, rate: float, seconds: float, body: bytes) -> tuple[list[float], collections.Counter, float]:
    """Send rate*seconds requests on schedule; return latencies of accepted ones, outcomes, and the wall time."""
    latencies: list[float] = []
    outcomes: collections.Counter = collections.Counter()
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()

    async def one(due: float) -> None:
        try:
            status = await client.post(body)
        except Exception as exc:
            outcomes[type(exc).__name__] += 1
            return
        outcomes[status] += 1
        if status == 201:
            latencies.append(loop.time() - due)

    start = loop.time()
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, outcomes, loop.time() - start


def queue_depth(broker_url: str, queue: str) -> int:
    """Messages waiting in a run queue's level queues."""
    connection = pika.BlockingConnection([pika.URLParameters(url) for url in broker_url.split(";")])
    try:
        total = 0
        for name in level_queues(queue):
            try:
                total += connection.channel().queue_declare(name, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:  # a level nothing was published to is not declared
                    raise
        return total
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000, help="submissions per second to send (default 1000)")
    parser.add_argument("--seconds", type=float, default=10, help="how long to send, after the warm-up (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds sent first and not counted (default 2)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (Procfile: WEB_CONCURRENCY=2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (Procfile: 8)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="first send the same load to a request that does nothing (POST /healthz, answered 405) to show the HTTP layer's own cost",
    )
    parser.add_argument(
        "--rate-limited",
        action="store_true",
        help="keep the tenant rate limit on (at 10 x the offered rate, so nothing is refused) to include its token bucket's cost",
    )
    parser.add_argument(
        "--traced",
        nargs="?",
        type=float,
        const=1.0,
        metavar="RATIO",
        help="export spans over OTLP/HTTP to a stand-in collector (bench/otlp_sink.py, its own process) to include tracing's cost; "
        "RATIO < 1 samples that share of traces (parentbased_traceidratio), default all",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=MAX_CONNECTIONS,
        help=f"at most this many keep-alive connections, opened as needed (default {MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--queue-type",
        choices=("classic", "quorum"),
        default="classic",
        help="DOCKYARD_QUEUE_TYPE of the run queues (default classic); a cluster's nodes come from DOCKYARD_BROKER_URL",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite (make run's default database, WAL) instead of Postgres")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="Postgres with fsync and synchronous_commit on (infra/dev/services.sh up postgres-durable) instead of the test server",
    )
    args = parser.parse_args()
    body = json.dumps({"processor": "echo", "payload": {"n": 1}, "priority": "normal"}).encode()

    with Stack(sqlite=args.sqlite, durable=args.durable) as stack:
        limit = {}
        if args.rate_limited:
            limit = {"DOCKYARD_RATE_LIMIT_PER_SECOND": str(args.rate * 10), "DOCKYARD_RATE_LIMIT_BURST": str(int(args.rate * 10))}
        tracing = {}
        if args.traced:
            sink = free_port()
            stack.spawn("otlp-sink", [sys.executable, "-m", "bench.otlp_sink", str(sink)])
            tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink}", "OTEL_TRACES_SAMPLER": "always_on"}
            if args.traced < 1:
                tracing.update(OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG=str(args.traced))
        url = stack.start_web(workers=args.web_workers, threads=args.threads, DOCKYARD_QUEUE_TYPE=args.queue_type, **limit, **tracing)
        print(f"machine: {machine_line()}")
        database = "SQLite (WAL)" if args.sqlite else stack.postgres_line()
        nodes = len(stack.broker_url.split(";"))
        print(
            f"gunicorn: {args.web_workers} workers x {args.threads} threads; {database}; "
            f"RabbitMQ: {args.queue_type} queues {stack.queue}.*, {nodes} node(s)"
        )
        state = f"on, {limit['DOCKYARD_RATE_LIMIT_PER_SECOND']}/s" if limit else "off"
        print(f"rate limit: {state}; API key checked on every request")
        share = f"{args.traced:.0%} of traces" if tracing and args.traced < 1 else "every span"
        print(f"tracing: {share + ' exported to ' + tracing['OTEL_EXPORTER_OTLP_ENDPOINT'] if tracing else 'no exporter (ids only)'}")

        if args.floor:

            async def floor() -> str:
                client = Client(url, "/healthz")
                await drive(client, args.rate, args.warmup, b"{}")
                machine0 = cpu_seconds_by_command()
                _, outcomes, wall = await drive(client, args.rate, args.seconds, b"{}")
                return f"{dict(outcomes)}; cpu: {cpu_share_line(machine0, cpu_seconds_by_command(), wall)}"

            print(f"floor, POST /healthz at {args.rate:g}/s: {asyncio.run(floor())}")

        async def run() -> tuple:
            client = Client(url, "/v1/runs", stack.auth_header, args.connections)
            warm = (await drive(client, args.rate, args.warmup, body))[1] if args.warmup > 0 else collections.Counter()
            cpu0, machine0 = time.process_time(), cpu_seconds_by_command()
            measured = await drive(client, args.rate, args.seconds, body)
            machine = cpu_share_line(machine0, cpu_seconds_by_command(), measured[2])
            return (*measured, time.process_time() - cpu0, client.open, warm, machine)

        latencies, outcomes, wall, client_cpu, connections, warm, machine = asyncio.run(run())
        warm_accepted = warm.get(201, 0)
        warm_errors = {str(k): v for k, v in warm.items() if k != 201}
        accepted = outcomes.get(201, 0)
        errors = {str(k): v for k, v in outcomes.items() if k != 201}
        sent = sum(outcomes.values())
        print(f"offered: {args.rate:g}/s for {args.seconds:g}s ({sent} requests, after {args.warmup:g}s warm-up)")
        print(f"accepted: {accepted} = {accepted / wall:.0f}/s; errors: {sum(errors.values())} {errors or ''}")
        if latencies:
            ms = [x * 1000 for x in latencies]
            print(
                f"latency ms: p50 {percentile(ms, 50):.1f}  p95 {percentile(ms, 95):.1f}  p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}"
            )
        print(f"client: {connections} connections (at most {args.connections}), {client_cpu / wall * 100:.0f}% of one cpu")
        print(f"cpu (100% = one of {os.cpu_count()}): {machine}")
        time.sleep(1)  # published marks are written in batches every 50 ms
        rows = Run.select().count()
        depth = queue_depth(stack.broker_url, stack.queue)
        unpublished = Run.select().where(Run.published_at.is_null()).count()
        print(
            f"check: {accepted + warm_accepted} accepted (warm-up included): {rows} run rows, "
            f"{unpublished} unpublished, {depth} messages in the queue" + (f"; warm-up errors {warm_errors}" if warm_errors else "")
        )
        if tracing:
            time.sleep(6)  # the exporters' batches go out every 5 s
            counts = requests.get(tracing["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/count", timeout=5).json()
            print(f"spans exported: {counts['spans']} in {counts['requests']} requests")


if __name__ == "__main__":
    main()
