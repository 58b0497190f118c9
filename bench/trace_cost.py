"""What exporting traces costs the API, as CPU per submit inside the web process.

A shared 2-core VM's speed drifts by tens of percent from one second to
the next: too much to see a few percent between runs, or even between
blocks of a hundred submits. So one process builds the API exactly as
`web.wsgi` does and sends `POST /v1/runs` through it in one thread
(falcon's test client: no HTTP server, real Postgres and RabbitMQ),
switching at every submit between no exporter and exporting every span
(OTLP/HTTP to a stand-in collector, bench/otlp_sink.py, in its own
process), in the order off-on, on-off, ... so that neighbours share the
machine's state.

Tracing's cost has two parts, measured apart: the request thread's (making
the spans), as that thread's CPU in each exporting submit against the
submits of no exporter around it; and the exporter thread's (encoding and
sending the batches the SDK's batch processor forms), as that thread's own
CPU over the whole run per exported submit. Their sum is set against a
submit's CPU without an exporter (every thread of the process).
`--placebo` exports in neither mode: what it prints is the noise floor.

    python -m bench.trace_cost [--blocks 4000] [--block 1] [--placebo]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

import requests

from bench.stack import ROOT, Stack, free_port, machine_line

WARMUP = 300


def child(blocks: int, block: int, placebo: bool, endpoint: str, api_key: str) -> None:
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

    def run(mode: str, count: int) -> tuple[float, float]:
        """CPU µs per submit of `count` submits: this thread's, and the whole process's."""
        switch.current, telemetry.tracing._exporting = modes[mode]
        thread0, process0 = time.thread_time(), time.process_time()
        for _ in range(count):
            result = client.simulate_post("/v1/runs", json=body, headers=headers)
            assert result.status_code == 201, result.text
        return (time.thread_time() - thread0) / count * 1e6, (time.process_time() - process0) / count * 1e6

    if placebo:  # the noise floor: "on" makes and exports nothing either (its flushes find nothing to send)
        exporting = modes["on"][0]

        class Placebo(IdsOnlyTracerProvider):
            def force_flush(self):
                return exporting.force_flush()

        modes["on"] = (Placebo(), False)
    run("off", WARMUP)
    run("on", WARMUP)
    modes["on"][0].force_flush()
    [exporter_thread] = [t for t in threading.enumerate() if t.name.startswith("OtelBatch")]
    exporter_clock = time.pthread_getcpuclockid(exporter_thread.ident)
    exporter0 = time.clock_gettime(exporter_clock)
    found = {"off": [], "on": [], "off_process": [], "on_process": []}
    for number in range(blocks):
        for mode in ("off", "on") if number % 2 == 0 else ("on", "off"):
            thread_cpu, process_cpu = run(mode, block)
            found[mode].append(thread_cpu)
            found[f"{mode}_process"].append(process_cpu)
    modes["on"][0].force_flush()  # the export of every measured span is part of the cost
    found["exporter_per_submit"] = (time.clock_gettime(exporter_clock) - exporter0) / (blocks * block) * 1e6
    print(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=4000, help="blocks of each mode, alternating (default 4000)")
    parser.add_argument("--block", type=int, default=1, help="submits per block (default 1)")
    parser.add_argument("--placebo", action="store_true", help="export in neither mode: the figures' noise floor")
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.blocks, args.block, args.placebo, *args.child)
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
                *(["--placebo"] if args.placebo else []),
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
        # Each exporting block's request thread against the mean of the blocks of no exporter just before and after.
        extra = [on[i] - (off[i] + off[i + 1]) / 2 for i in range(len(on) - 1)]
        submit = statistics.median(found["off_process"])
        making, exporting = statistics.median(extra), found["exporter_per_submit"]
        for mode in ("off", "on"):
            low, _, high = statistics.quantiles(found[mode], n=4)
            print(f"{mode:>4}: request thread {statistics.median(found[mode]):.0f} µs CPU per submit (quartiles {low:.0f}-{high:.0f})")
        low, _, high = statistics.quantiles(extra, n=4)
        print(f"a submit without an exporter: {submit:.0f} µs CPU (every thread, median of blocks)")
        print(
            f"making the spans (request thread, against its neighbours): {making:+.0f} µs per submit (quartiles {low:+.0f} to {high:+.0f})"
        )
        print(f"exporting them (the exporter thread's CPU): {exporting:.0f} µs per submit")
        print(f"exporting every span costs {making + exporting:.0f} µs per submit: {(making + exporting) / submit:.1%} of a submit")
        counts = requests.get(f"{endpoint}/count", timeout=5).json()
        print(f"spans exported: {counts['spans']} in {counts['requests']} requests")


if __name__ == "__main__":
    main()
