"""What exporting traces costs the API, as CPU per submit inside the web process.

Saturated throughput on a shared 2-core machine swings by ±15% between
identical runs, and even separate processes' CPU per submit drifts by tens
of percent from one minute to the next: too much to see a few percent. So
one process builds the API exactly as `web.wsgi` does and sends `POST
/v1/runs` through it in one thread (falcon's test client: no HTTP server,
real Postgres and RabbitMQ), switching between no exporter and exporting
every span (OTLP/HTTP to a stand-in collector, bench/otlp_sink.py, in its
own process) every block of submits. Each block's CPU is the process's
(every thread, so the exporter's too: an exporting block ends by flushing
its spans). Comparing each exporting block with the blocks around it takes
the drift out.

    python -m bench.trace_cost [--blocks 40] [--block 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import requests

from bench.stack import ROOT, Stack, free_port, machine_line

WARMUP = 300


def child(blocks: int, block: int, endpoint: str, api_key: str) -> None:
    """Inside a fresh process: print {"off": [...], "on": [...]} (CPU µs per submit of each block) as the last line."""
    import falcon.testing
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource

    import telemetry.tracing
    from telemetry.otlp import OtlpExporter
    from telemetry.recording import RecordingTracerProvider
    from telemetry.tracing import IdsOnlyTracerProvider

    class Switch(trace.TracerProvider):
        """The process's provider: hands every span to the provider of the mode being measured."""

        def __init__(self):
            self.current: trace.TracerProvider = IdsOnlyTracerProvider()

        def get_tracer(self, name, *args, **kwargs):
            return SwitchTracer(self, name)

    class SwitchTracer(trace.Tracer):
        def __init__(self, switch: Switch, name: str):
            self.switch, self.name = switch, name

        def start_span(self, *args, **kwargs):
            return self.switch.current.get_tracer(self.name).start_span(*args, **kwargs)

        def start_as_current_span(self, *args, **kwargs):
            return self.switch.current.get_tracer(self.name).start_as_current_span(*args, **kwargs)

    switch = Switch()
    trace.set_tracer_provider(switch)  # web.wsgi's own configuration (no exporter) cannot replace it
    resource = Resource.create({"service.name": "dockyard-web"})
    modes = {
        "off": (IdsOnlyTracerProvider(), False),
        "on": (RecordingTracerProvider(resource, exporter=OtlpExporter(resource.attributes, f"{endpoint}/v1/traces")), True),
    }
    import web.wsgi

    client = falcon.testing.TestClient(web.wsgi.app)
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"processor": "echo", "payload": {"n": 1}, "priority": "normal"}

    def run(mode: str, count: int) -> float:
        switch.current, telemetry.tracing._exporting = modes[mode]
        cpu0 = time.process_time()
        for _ in range(count):
            result = client.simulate_post("/v1/runs", json=body, headers=headers)
            assert result.status_code == 201, result.text
        if modes[mode][1]:
            switch.current.force_flush()  # the export of these submits' spans is part of their cost
        return (time.process_time() - cpu0) / count * 1e6

    run("off", WARMUP)
    run("on", WARMUP)
    found = {"off": [], "on": []}
    for number in range(blocks):
        for mode in ("off", "on") if number % 2 == 0 else ("on", "off"):
            found[mode].append(run(mode, block))
    print(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=40, help="blocks of each mode, alternating (default 40)")
    parser.add_argument("--block", type=int, default=100, help="submits per block (default 100)")
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.blocks, args.block, *args.child)
        return

    with Stack() as stack:
        sink = free_port()
        stack.spawn("otlp-sink", [sys.executable, "-m", "bench.otlp_sink", str(sink)])
        endpoint = f"http://127.0.0.1:{sink}"
        print(f"machine: {machine_line()}")
        print(f"{args.blocks} blocks x {args.block} submits per mode, alternating; one thread, in process, Postgres + RabbitMQ")
        env = {k: v for k, v in stack.env(DOCKYARD_LOG_FORMAT="text").items() if not k.startswith("OTEL_")}
        time.sleep(1)  # the sink's port
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.trace_cost",
                "--blocks",
                str(args.blocks),
                "--block",
                str(args.block),
                "--child",
                endpoint,
                stack.api_key,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            sys.exit(f"bench: the measuring process failed:\n{done.stderr[-3000:]}")
        found = json.loads(done.stdout.strip().splitlines()[-1])
        off, on = found["off"], found["on"]
        # Each exporting block against the mean of the blocks of no exporter just before and after it.
        ratios = [on[i] / ((off[i] + off[i + 1]) / 2) for i in range(len(on) - 1)]
        for mode, values in found.items():
            low, _, high = statistics.quantiles(values, n=4)
            print(f"{mode:>4}: median {statistics.median(values):.0f} µs CPU per submit (quartiles {low:.0f}-{high:.0f})")
        low, _, high = statistics.quantiles(ratios, n=4)
        middle = statistics.median(ratios)
        print(f"exporting every span / no exporter, block by block: median {middle - 1:+.1%} (quartiles {low - 1:+.1%} to {high - 1:+.1%})")
        counts = requests.get(f"{endpoint}/count", timeout=5).json()
        print(f"spans exported: {counts['spans']} in {counts['requests']} requests")


if __name__ == "__main__":
    main()
