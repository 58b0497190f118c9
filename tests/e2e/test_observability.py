"""Observing the Procfile's processes: one trace from the HTTP request to the container (and the
processor's own span), exported over OTLP/HTTP to a receiver the test runs; JSON log lines."""

from __future__ import annotations

import fcntl
import json
import secrets
import socket
import struct

import docker
import pytest
import yaml

from tests.conftest import required_env, unique, wait_until
from tests.e2e.test_procfile import procfile_stack
from tests.otlp_receiver import Receiver

SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address
ENDED = ("succeeded", "failed", "timed_out", "dead_letter", "cancelled")


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: where a bridged container reaches the receiver."""
    bridge = docker.from_env().networks.get("bridge").attrs
    if gateway := bridge["IPAM"]["Config"][0].get("Gateway"):
        return gateway
    # NOTE: an engine that found its bridge interface already up (docker0 made by an earlier
    # start) reports only the subnet: the gateway is that interface's own address.
    name = bridge["Options"]["com.docker.network.bridge.name"].encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15]))
    return socket.inet_ntoa(answer[20:24])


def sample_image(name: str) -> str:
    manifest = yaml.safe_load(open(required_env("TEST_PROCESSORS_MANIFEST")))
    return next(p["image"] for p in manifest["processors"] if p["name"] == name)


def register_flaky(stack) -> None:
    """`flaky`: the `fail` sample, its exit code 3 retried once at once (so a run of it ends dead_letter)."""
    flaky = {
        "image": sample_image("fail"),
        "timeout_seconds": 30,
        "resources": {"cpus": 0.25, "memory_mb": 16, "pids": 16},
        "retry": {"max_attempts": 2, "backoff_min_seconds": 0, "backoff_max_seconds": 0, "retry_on_exit_codes": [3]},
    }
    resp = stack["http"].put(f"{stack['base']}/v1/processors/flaky", json=flaky, timeout=10)
    assert resp.status_code in (200, 201), resp.text


@pytest.fixture(scope="module")
def receiver():
    gateway = bridge_gateway()
    found = Receiver(hosts=("127.0.0.1", gateway))
    found.gateway = gateway
    yield found
    found.close()


@pytest.fixture(scope="module")
def stack(receiver, tmp_path_factory):
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint(), "OTEL_BSP_SCHEDULE_DELAY": "100"}  # no DOCKYARD_LOG_FORMAT: JSON by default
    with procfile_stack(tmp_path_factory.mktemp("observability"), otel) as stack:
        http, base = stack["http"], stack["base"]
        # Created first: the minute turns (and the schedule fires) while the other tests run.
        body = {"name": unique("traced-every-minute"), "cron": "* * * * *", "processor": "echo", "payload": {"tick": True}}
        resp = http.post(f"{base}/v1/schedules", json=body, timeout=10)
        assert resp.status_code == 201, resp.text
        stack["schedule"] = resp.json()
        processor = {
            "image": sample_image("traced"),
            "timeout_seconds": 30,
            "resources": {"cpus": 0.25, "memory_mb": 16, "pids": 16},
            "network": "bridge",
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint(receiver.gateway)},
        }
        assert http.put(f"{base}/v1/processors/traced", json=processor, timeout=10).status_code in (200, 201)
        register_flaky(stack)
        yield stack


def ended(stack, run_id: str) -> dict:
    def look():
        run = stack["http"].get(f"{stack['base']}/v1/runs/{run_id}", timeout=10).json()
        return run if run["state"] in ENDED else None

    return wait_until(look, timeout=60, what=f"run {run_id} to end")


def exported(receiver, trace_id: str, names: set[str]):
    """The trace's spans once every one of `names` has arrived: each process exports in its own batches, and a
    parent span ends (so is exported) after its children."""
    return wait_until(
        lambda: (found := receiver.trace(trace_id)) and names <= {s.name for s in found} and found,
        timeout=30,
        what=f"spans {sorted(names)} to be exported",
    )


def spans_named(spans, name: str):
    return [s for s in spans if s.name == name]


def one(spans, name: str):
    found = spans_named(spans, name)
    assert len(found) == 1, (name, [(s.service, s.name) for s in spans])
    return found[0]


def test_one_trace_runs_from_the_request_through_the_container_to_the_processors_own_span(stack, receiver):
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    resp = stack["http"].post(
        f"{stack['base']}/v1/runs",
        json={"processor": "traced", "payload": {"hello": "trace"}},
        headers={"traceparent": f"00-{client_trace}-{client_span}-01"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["trace_id"] == client_trace  # the caller's trace, continued
    run = ended(stack, resp.json()["id"])
    assert run["state"] == "succeeded", run
    assert run["trace_id"] == client_trace

    names = {"POST /v1/runs", "dockyard.runs.insert", f"{stack['queue']} publish", "dockyard.attempt", "dockyard.container", "traced.work"}
    spans = exported(receiver, client_trace, names)
    assert not receiver.errors
    server = one(spans, "POST /v1/runs")
    assert (server.service, server.kind, server.parent_span_id) == ("dockyard-web", "SERVER", client_span)
    assert server.attributes["dockyard.run_id"] == run["id"] and server.attributes["http.response.status_code"] == 201
    assert not spans_named(spans, "dockyard.submit")  # the request's span is the submit's
    insert = one(spans, "dockyard.runs.insert")
    assert insert.parent_span_id == server.span_id
    publish = one(spans, f"{stack['queue']} publish")
    assert (publish.kind, publish.parent_span_id) == ("PRODUCER", server.span_id)

    attempt = one(spans, "dockyard.attempt")
    assert (attempt.service, attempt.kind, attempt.parent_span_id) == ("dockyard-worker", "CONSUMER", publish.span_id)
    assert attempt.attributes["dockyard.attempt"] == 1 and attempt.attributes["dockyard.attempt.outcome"] == "succeeded"
    container = one(spans, "dockyard.container")
    assert container.parent_span_id == attempt.span_id
    assert container.attributes["process.exit.code"] == 0 and container.attributes["dockyard.attempt.outcome"] == "succeeded"
    assert [name for name, _ in container.events] == ["created", "started", "exited", "removed"]

    # The container was handed the container span's own context, and its span joined the trace under it.
    assert run["result"]["trace_id"] == client_trace and run["result"]["parent_span_id"] == container.span_id
    work = one(spans, "traced.work")
    assert (work.service, work.parent_span_id) == ("dockyard-sample-traced", container.span_id)


def test_each_retry_is_an_attempt_span_in_the_same_trace_and_a_replay_links_back(stack, receiver):
    http, base = stack["http"], stack["base"]
    resp = http.post(f"{base}/v1/runs", json={"processor": "flaky", "payload": {"exit_code": 3}}, timeout=10)
    assert resp.status_code == 201, resp.text
    run = ended(stack, resp.json()["id"])
    assert run["attempts"] == 2 and run["state"] != "succeeded", run

    def attempts():
        found = spans_named(receiver.trace(run["trace_id"]), "dockyard.attempt")
        return found if len(found) == 2 else None

    spans = wait_until(attempts, timeout=30, what="both attempts' spans")
    publish = one(receiver.trace(run["trace_id"]), f"{stack['queue']} publish")
    assert sorted(s.attributes["dockyard.attempt"] for s in spans) == [1, 2]
    assert {s.parent_span_id for s in spans} == {publish.span_id}  # the retried message carries the same context
    assert {s.status for s in spans} == {2}  # each failed attempt is an error
    original_request = one(receiver.trace(run["trace_id"]), "POST /v1/runs")

    replay = http.post(f"{base}/v1/runs/{run['id']}/replay", timeout=10)
    assert replay.status_code == 201, replay.text
    replayed = replay.json()
    assert replayed["trace_id"] and replayed["trace_id"] != run["trace_id"]
    request = wait_until(
        lambda: spans_named(receiver.trace(replayed["trace_id"]), "POST /v1/runs/{run_id}/replay"), timeout=30, what="the replay's span"
    )[0]
    assert request.links == [(run["trace_id"], original_request.span_id)]


def test_a_schedule_fire_starts_a_trace_that_its_run_continues(stack, receiver):
    schedule, http, base = stack["schedule"], stack["http"], stack["base"]

    def fired_run():
        items = http.get(f"{base}/v1/runs", params={"schedule_id": schedule["id"]}, timeout=10).json()["items"]
        return items[0] if items else None

    run = wait_until(fired_run, timeout=90, what="the schedule's first fire")
    run = ended(stack, run["id"])
    names = {"dockyard.schedule.fire", "dockyard.runs.insert", f"{stack['queue']} publish", "dockyard.attempt", "dockyard.container"}
    spans = exported(receiver, run["trace_id"], names)
    fire = one(spans, "dockyard.schedule.fire")
    assert (fire.service, fire.parent_span_id) == ("dockyard-scheduler", None)
    assert fire.attributes["dockyard.schedule_id"] == schedule["id"]
    assert fire.attributes["dockyard.schedule.fire_time"] == schedule["next_fire_at"].replace(".000Z", "Z")
    assert one(spans, "dockyard.runs.insert").parent_span_id == fire.span_id
    assert one(spans, f"{stack['queue']} publish").parent_span_id == fire.span_id
    assert one(spans, "dockyard.attempt").service == "dockyard-worker"


def test_every_process_logs_json_lines_that_carry_the_run_and_its_trace(stack):
    http, base = stack["http"], stack["base"]
    resp = http.post(f"{base}/v1/runs", json={"processor": "echo", "payload": {"log": "json"}}, timeout=10)
    run = ended(stack, resp.json()["id"])

    def run_lines():
        lines = [json.loads(line) for line in (stack["logs"] / "worker.log").read_text().splitlines() if line.strip()]
        return [line for line in lines if line.get("run_id") == run["id"]] or None

    lines = wait_until(run_lines, timeout=10, what="the worker's lines about the run")
    assert {line["trace_id"] for line in lines} == {run["trace_id"]}
    assert {line.get("attempt") for line in lines if "attempt 1 ended" in line["message"]} == {1}
    assert all(line["processor"] == "echo" and line["tenant"] == "default" for line in lines)

    for name in ("web", "worker", "scheduler"):
        text = (stack["logs"] / f"{name}.log").read_text()
        assert text.strip(), f"{name} logged nothing"
        for number, line in enumerate(text.splitlines(), 1):
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{name}.log line {number} is not JSON: {line!r}")
            assert {"time", "level", "logger", "message"} <= set(parsed), (name, line)
