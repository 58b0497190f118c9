"""Failure paths on the real services: retries, dead letters, cancel, idempotency, lost workers."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import time
from urllib.parse import quote

import falcon.testing
import pika
import pytest
import requests

from actors.broker import broker_queues, create_broker
from actors.dispatch import Dispatcher, run_message
from actors.queues import QueueAdmin, QueueMismatch
from storage import run_states
from storage import runs as run_store
from storage.models import Run, RunAttempt, utcnow
from storage.processors import disable_processor, parse_processor_spec, put_processor
from storage.run_states import RunState
from tests.conftest import key_headers, required_env, unique, wait_until
from tests.integration.conftest import delete_queues
from web.app import create_app

QUICK_RETRY = {"backoff_min_seconds": 0.2, "backoff_max_seconds": 1}


def flaky(stack, sample_processors, name: str, max_attempts: int) -> str:
    spec = {k: v for k, v in sample_processors["fail"].items() if k != "name"}
    stack.register(name, {**spec, "retry": {"max_attempts": max_attempts, **QUICK_RETRY}})
    return name


def attempts_of(stack, run_id: str) -> list[dict]:
    return stack.client.simulate_get(f"/v1/runs/{run_id}/attempts").json["items"]


def test_exit_75_is_retried_until_it_succeeds(stack, sample_processors):
    name = flaky(stack, sample_processors, "flaky3", max_attempts=3)
    run = stack.wait_state(stack.submit(name, {"exit_code": 75, "succeed_on_attempt": 3})["id"], timeout=60)
    assert run["state"] == "succeeded", run
    assert run["attempts"] == 3 and run["result"] == {"attempt": 3} and run["error"] is None
    assert [(a["outcome"], a["exit_code"]) for a in attempts_of(stack, run["id"])] == [("failed", 75), ("failed", 75), ("succeeded", 0)]
    events = stack.client.simulate_get(f"/v1/runs/{run['id']}/events").json["items"]
    assert [e["to_state"] for e in events] == [
        "queued",
        "running",
        "retrying",
        "queued",
        "running",
        "retrying",
        "queued",
        "running",
        "succeeded",
    ]


def dead_letters(queue: str) -> list[dict]:
    """The messages in a queue's dead-letter queue, left in place."""
    connection = pika.BlockingConnection(pika.URLParameters(required_env("DOCKYARD_BROKER_URL")))
    channel = connection.channel()
    bodies = []
    while True:
        method, _, body = channel.basic_get(f"{queue}.XQ")
        if method is None:
            break
        bodies.append(json.loads(body))
    connection.close()  # unacked: back into the queue
    return bodies


def test_exit_75_forever_is_dead_lettered_with_its_reason(stack, sample_processors):
    name = flaky(stack, sample_processors, "flaky2", max_attempts=2)
    run = stack.wait_state(stack.submit(name, {"exit_code": 75})["id"], timeout=60)
    assert run["state"] == "dead_letter", run
    assert run["exit_code"] == 75 and run["attempts"] == 2
    assert run["error"]["reason"] == "exit_code" and "no attempts left (2 of 2)" in run["error"]["message"]
    last = attempts_of(stack, run["id"])[-1]
    assert "exiting with code 75" in last["log_tail"]
    wait_until(
        lambda: any(m["args"] == [run["id"]] for m in dead_letters(stack.settings.default_queue)),
        timeout=10,
        what="the message in the dead-letter queue",
    )

    replay = stack.client.simulate_post(f"/v1/runs/{run['id']}/replay")
    assert replay.status_code == 201
    again = stack.client.simulate_post(f"/v1/runs/{run['id']}/replay")
    assert again.json["id"] == replay.json["id"]
    replayed = stack.wait_state(replay.json["id"], timeout=60)
    assert replayed["state"] == "dead_letter" and replayed["replay_of"] == run["id"]


def test_cancel_kills_a_running_container_within_2s(stack):
    run = stack.submit("sleep", {"seconds": 60})
    wait_until(lambda: stack.get(run["id"])["state"] == "running" and stack.containers_of(run["id"]), timeout=30, what="the sleep to start")
    wait_until(lambda: "slept 0" in stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text, timeout=10, what="first log line")
    asked = time.monotonic()
    resp = stack.client.simulate_post(f"/v1/runs/{run['id']}/cancel")
    assert resp.status_code == 202 and resp.json["state"] == "cancelled"
    wait_until(
        lambda: all(c.status != "running" for c in stack.containers_of(run["id"])) or not stack.containers_of(run["id"]),
        timeout=5,
        interval=0.05,
        what="the container to stop",
    )
    took = time.monotonic() - asked
    assert took <= 2.0, f"container stopped {took:.2f}s after the cancel"
    wait_until(lambda: attempts_of(stack, run["id"])[0]["outcome"] == "cancelled", timeout=10, what="the attempt to end cancelled")
    assert stack.get(run["id"])["state"] == "cancelled"
    wait_until(lambda: not stack.containers_of(run["id"]), timeout=10, what="the container to be removed")
    assert stack.client.simulate_post(f"/v1/runs/{run['id']}/cancel").status_code == 409


def test_a_cancelled_queued_run_never_starts(stack):
    busy = stack.submit("sleep", {"seconds": 2})  # one worker thread: the next run waits in the queue
    waiting = stack.submit("echo", {"n": 1})
    assert stack.client.simulate_post(f"/v1/runs/{waiting['id']}/cancel").status_code == 202
    assert stack.wait_state(busy["id"], timeout=30)["state"] == "succeeded"
    marker = stack.wait_state(stack.submit("echo", {"n": 2})["id"], timeout=30)  # the queue has moved past it
    assert marker["state"] == "succeeded"
    cancelled = stack.get(waiting["id"])
    assert cancelled["state"] == "cancelled" and cancelled["attempts"] == 0 and cancelled["started_at"] is None


def test_concurrent_identical_idempotent_submits_make_one_run(stack):
    body = {"processor": "echo", "payload": {"once": True}}

    def post(_):
        return stack.client.simulate_post("/v1/runs", json=body, headers={"Idempotency-Key": "same-key"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(16)))
    assert sorted(r.status_code for r in responses) == [200] * 15 + [201], [r.text for r in responses]
    assert len({r.json["id"] for r in responses}) == 1
    assert Run.select().where(Run.idempotency_key == "same-key").count() == 1


def start_orphan(stack, sample_processors, run_id: str):
    """A container as a dead worker leaves it: labelled with the run, still running."""
    image = stack.docker.images.get(sample_processors["sleep"]["image"])
    return stack.docker.containers.run(
        image.id, detach=True, labels={"dockyard.run_id": run_id, "dockyard.worker": "dead-worker"}, stdin_open=True
    )


def running_under(stack, processor: str, payload: dict, owner: str, lease_until: dt.datetime) -> Run:
    """A run as a worker leaves it mid-attempt: running, attempt 1 open, its lease until `lease_until`."""
    run = run_store.create_run(
        tenant_id="default",
        processor=processor,
        queue=stack.settings.default_queue,
        priority="normal",
        payload=payload,
        labels={},
        timeout_seconds=30,
    )
    run_states.transition(run.id, RunState.RUNNING, attempts=1, started_at=utcnow(), lease_owner=owner, lease_expires_at=lease_until)
    run_store.start_attempt(run.id, 1, owner)
    return run


def test_a_lost_worker_is_recorded_its_container_removed_and_the_run_retried(stack, sample_processors):
    run = running_under(stack, "echo", {"after": "loss"}, "dead-worker", utcnow() - dt.timedelta(seconds=5))
    orphan = start_orphan(stack, sample_processors, run.id)
    stack.broker.enqueue(run_message(run))  # the redelivery
    done = stack.wait_state(run.id, timeout=30)
    assert done["state"] == "succeeded" and done["attempts"] == 2 and done["result"] == {"after": "loss"}
    first, second = attempts_of(stack, run.id)
    assert (first["outcome"], first["worker"]) == ("worker_lost", "dead-worker") and "stopped renewing" in first["log_tail"]
    assert (second["outcome"], second["worker"]) == ("succeeded", "it-worker")
    assert orphan.id not in [c.id for c in stack.docker.containers.list(all=True, sparse=True)]


def test_a_redelivery_while_the_holder_renews_is_dropped(stack):
    run = running_under(stack, "echo", {}, "live-worker", utcnow() + dt.timedelta(seconds=2))
    stack.broker.enqueue(run_message(run))
    # The live holder renews before the delivery's second look.
    time.sleep(1)
    Run.update(lease_expires_at=utcnow() + dt.timedelta(seconds=60)).where(Run.id == run.id).execute()
    marker = stack.wait_state(stack.submit("echo", {})["id"], timeout=30)
    assert marker["state"] == "succeeded"
    time.sleep(4)  # past the second look
    held = Run.get_by_id(run.id)
    assert held.state == "running" and held.attempts == 1 and held.lease_owner == "live-worker"
    assert RunAttempt.select().where(RunAttempt.run == run.id).count() == 1


def test_a_full_queue_answers_503_and_leaves_no_run(stack, sample_processors):
    # Its own small queue and API, with no worker: three messages fill it.
    settings = stack.settings.replace(default_queue=unique("full"), queue_max_length=3)
    broker = create_broker(settings)
    dispatcher = Dispatcher(broker)
    client = falcon.testing.TestClient(create_app(settings, db=stack.db, dispatcher=dispatcher), headers=key_headers())
    spec = {k: v for k, v in sample_processors["echo"].items() if k != "name"}
    put_processor(parse_processor_spec("echo-full", spec, settings), actor="test")
    try:
        accepted = [client.simulate_post("/v1/runs", json={"processor": "echo-full"}) for _ in range(3)]
        assert [r.status_code for r in accepted] == [201] * 3
        refused = client.simulate_post("/v1/runs", json={"processor": "echo-full"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] and "is full" in refused.json["detail"]
        assert Run.select().where(Run.processor == "echo-full").count() == 3
    finally:
        dispatcher.close()
        broker.close()
        delete_queues(required_env("DOCKYARD_BROKER_URL"), settings.default_queue)


def close_from_the_broker(local_port: int) -> None:
    """Have RabbitMQ close the AMQP connection whose client side is `local_port` (as after missed heartbeats)."""
    api = required_env("TEST_RABBITMQ_MANAGEMENT_URL")
    auth = ("guest", "guest")

    def ours():
        return [c for c in requests.get(f"{api}/api/connections", auth=auth, timeout=5).json() if c.get("peer_port") == local_port]

    # The management plugin lists a new connection at its next statistics round (5 s).
    [conn] = wait_until(ours, timeout=15, interval=0.5, what="the connection to be listed")
    requests.delete(f"{api}/api/connections/{quote(conn['name'], safe='')}", auth=auth, timeout=5).raise_for_status()
    time.sleep(1)  # the broker has sent connection.close; the client learns of it at its next use


def test_the_api_publisher_survives_a_connection_the_broker_closed(stack):
    broker = create_broker(stack.settings)
    dispatcher = Dispatcher(broker)
    client = falcon.testing.TestClient(create_app(stack.settings, db=stack.db, dispatcher=dispatcher), headers=key_headers())
    try:
        assert client.simulate_post("/v1/runs", json={"processor": "echo"}).status_code == 201
        # NOTE: the publisher's socket; pika keeps it on its transport.
        local_port = broker.connection._impl._transport._sock.getsockname()[1]
        close_from_the_broker(local_port)
        resp = client.simulate_post("/v1/runs", json={"processor": "echo"})
        assert resp.status_code == 201, resp.text
        assert stack.wait_state(resp.json["id"], timeout=30)["state"] == "succeeded"
    finally:
        dispatcher.close()
        broker.close()


def test_the_outbox_republishes_a_run_whose_publish_never_happened(stack):
    # The API wrote the row, then died before publishing.
    run = run_store.create_run(
        tenant_id="default",
        processor="echo",
        queue=stack.settings.default_queue,
        priority="normal",
        payload={"from": "outbox"},
        labels={},
        timeout_seconds=30,
    )
    Run.update(created_at=utcnow() - dt.timedelta(seconds=60)).where(Run.id == run.id).execute()
    dispatcher = stack.dispatcher
    assert dispatcher.republish_lost() >= 1
    done = stack.wait_state(run.id, timeout=30)
    assert done["state"] == "succeeded" and done["result"] == {"from": "outbox"}
    assert Run.get_by_id(run.id).published_at is not None  # not swept again


def test_a_run_published_twice_runs_once(stack):
    run = stack.submit("echo", {"twice": True})
    stack.broker.enqueue(run_message(Run.get_by_id(run["id"])))
    assert stack.wait_state(run["id"], timeout=30)["state"] == "succeeded"
    marker = stack.wait_state(stack.submit("echo", {})["id"], timeout=30)  # the duplicate is behind us
    assert marker["state"] == "succeeded"
    assert len(attempts_of(stack, run["id"])) == 1


def test_the_outbox_revives_a_run_whose_worker_and_message_are_gone(stack):
    run = running_under(stack, "echo", {"revived": True}, "vanished-worker", utcnow() - dt.timedelta(minutes=5))
    assert stack.dispatcher.republish_lost() >= 1
    done = stack.wait_state(run.id, timeout=30)
    assert done["state"] == "succeeded" and done["attempts"] == 2
    assert attempts_of(stack, run.id)[0]["outcome"] == "worker_lost"


def dockyard(stack, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    environment.update(
        DOCKYARD_DATABASE_URL=stack.settings.database_url,
        DOCKYARD_BROKER_URL=stack.settings.broker_url,
        DOCKYARD_DEFAULT_QUEUE=stack.settings.default_queue,
    )
    environment.update(env or {})
    return subprocess.run(
        [pathlib.Path(sys.executable).parent / "dockyard", *args], env=environment, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_dlq_commands_list_peek_replay_and_purge(stack, sample_processors):
    name = flaky(stack, sample_processors, "flaky1", max_attempts=1)
    run = stack.wait_state(stack.submit(name, {"exit_code": 75})["id"], timeout=60)
    assert run["state"] == "dead_letter"
    queue = stack.settings.default_queue
    wait_until(lambda: any(m["args"] == [run["id"]] for m in dead_letters(queue)), timeout=10, what="the dead letter")

    listed = dockyard(stack, "dlq", "list", "--processor", name)
    assert listed.returncode == 0 and run["id"] in listed.stdout, listed.stderr
    assert dockyard(stack, "dlq", "list", "--since", "2999-01-01T00:00:00Z").stdout == ""
    for _ in range(2):  # peeking leaves the messages where they are
        peeked = dockyard(stack, "dlq", "peek")
        assert peeked.returncode == 0 and f"{run['id']}  dead-lettered" in peeked.stdout and "run is dead_letter" in peeked.stdout

    replayed = dockyard(stack, "dlq", "replay", run["id"])
    assert replayed.returncode == 0 and f"{run['id']} replayed as" in replayed.stdout, replayed.stderr
    replay_id = replayed.stdout.split("replayed as ")[1].split()[0]
    assert Run.get_by_id(replay_id).replay_of == run["id"]
    assert not any(m["args"] == [run["id"]] for m in dead_letters(queue))
    again = dockyard(stack, "dlq", "replay", run["id"])
    assert f"was already replayed as {replay_id}" in again.stdout
    assert Run.select().where(Run.replay_of == run["id"]).count() == 1

    assert stack.wait_state(replay_id, timeout=60)["state"] == "dead_letter"  # exit 75 again
    wait_until(lambda: dead_letters(queue), timeout=10, what="the replay's dead letter")
    declined = dockyard(stack, "dlq", "purge", stdin="n\n")
    assert declined.returncode == 1 and dead_letters(queue)
    purged = dockyard(stack, "dlq", "purge", "--yes")
    assert purged.returncode == 0 and "deleted" in purged.stdout and not dead_letters(queue)
    assert dockyard(stack, "dlq", "replay").returncode == 2  # neither ids nor --all


def test_the_cli_refuses_to_replay_what_the_api_refuses(stack, sample_processors):
    """Both replay through the dispatcher's admission rules: a dead-lettered run of a processor disabled since is
    refused by `dockyard dlq replay` as the API refuses it (422), and its dead letter stays."""
    name = flaky(stack, sample_processors, "refused_replay", max_attempts=1)
    run = stack.wait_state(stack.submit(name, {"exit_code": 75})["id"], timeout=60)
    assert run["state"] == "dead_letter"
    queue = stack.settings.default_queue
    wait_until(lambda: any(m["args"] == [run["id"]] for m in dead_letters(queue)), timeout=10, what="the dead letter")
    disable_processor(name, actor="test")

    api = stack.client.simulate_post(f"/v1/runs/{run['id']}/replay")
    assert api.status_code == 422 and [e["field"] for e in api.json["errors"]] == ["processor"], api.text
    cli = dockyard(stack, "dlq", "replay", run["id"])
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert f"run {run['id']} not replayed: processor: processor {name!r} is disabled" in cli.stderr
    assert "replayed 0 run(s); removed 0 dead letter(s)" in cli.stdout
    assert Run.select().where(Run.replay_of == run["id"]).count() == 0
    assert any(m["args"] == [run["id"]] for m in dead_letters(queue))


def test_a_queue_with_other_arguments_is_replaced_only_if_empty(stack):
    name = unique("old_queue")
    level = f"{name}.normal"
    queues = QueueAdmin(stack.broker)
    connection = pika.BlockingConnection(pika.URLParameters(stack.settings.broker_url))
    channel = connection.channel()
    channel.queue_declare(level, durable=True)  # as an older version declared it: no length limit, no dead letters
    try:
        channel.basic_publish("", level, b"{}")
        with pytest.raises(QueueMismatch, match=f"queue '{level}' exists with other arguments .* holds 1 message"):
            queues.ensure(name, recreate_if_empty=True)
        channel = connection.channel()
        channel.queue_purge(level)
        with pytest.raises(QueueMismatch, match="inequivalent arg"):
            queues.ensure(name)
        assert queues.ensure(name, recreate_if_empty=True) == "recreated"
        assert queues.ensure(name) == "ok"
    finally:
        connection.close()
        delete_queues(stack.settings.broker_url, name)


def test_queue_declare_declares_every_level_of_the_run_queue_with_its_type(stack):
    name = unique("declared")
    env = {"DOCKYARD_DEFAULT_QUEUE": name, "DOCKYARD_QUEUE_TYPE": "quorum"}
    try:
        done = dockyard(stack, "queue", "declare", env=env)
        assert done.returncode == 0, done.stderr
        assert f"run queue '{name}' declared: {name}.critical, {name}.high, {name}.normal, {name}.low" in done.stdout
        assert "(quorum, max length 100000 each)" in done.stdout
        connection = pika.BlockingConnection(pika.URLParameters(stack.settings.broker_url))
        for queue in broker_queues(name):
            connection.channel().queue_declare(queue, passive=True)  # each exists (404 otherwise)
        connection.close()
        # Declared again as classic: every queue is quorum, so each is refused, and named.
        refused = dockyard(stack, "queue", "declare", env={**env, "DOCKYARD_QUEUE_TYPE": "classic"})
        assert refused.returncode == 1 and f"queue '{name}.critical' exists with other arguments" in refused.stderr
    finally:
        delete_queues(stack.settings.broker_url, name)


def test_stats_shows_queues_runs_and_workers_at_a_glance(stack):
    ended = stack.wait_state(stack.submit("echo", {"n": 1})["id"])
    done = dockyard(stack, "stats", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    stats = json.loads(done.stdout)
    queue = stack.settings.default_queue
    assert list(stats["levels"]) == ["critical", "high", "normal", "low"]
    assert stats["levels"]["normal"]["queue"] == f"{queue}.normal" and stats["levels"]["normal"]["consumers"] >= 1
    assert stats["dead_letters"]["queue"] == f"{queue}.XQ"
    assert stats["ended_last_hour"].get(ended["state"], 0) >= 1
    assert set(stats["runs_now"]) == {"queued", "running", "retrying"} and set(stats["workers"]) == {"live", "lost", "stopped"}
    text = dockyard(stack, "stats")
    assert text.returncode == 0 and f"run queue '{queue}'" in text.stdout and "last hour:    ended succeeded" in text.stdout
    broker_down = dockyard(stack, "stats", env={"DOCKYARD_BROKER_URL": "amqp://guest:guest@127.0.0.1:9/%2F?connection_attempts=1"})
    assert broker_down.returncode == 4 and "dockyard: stats:" in broker_down.stderr
