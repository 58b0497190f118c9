"""Break things under load and count: nothing accepted is lost, ends twice, or stays unfinished.

Each test prints its ledger (`-s` shows it): runs accepted, refusals the
client retried, runs lost, runs that reached two terminal states, runs stuck.
"""

from __future__ import annotations

import signal
import time

import requests

from tests.chaos.conftest import Submitter, assert_nothing_lost, services
from tests.conftest import wait_until

MIXED = [
    {"processor": "sleep", "payload": {"seconds": 2}},
    {"processor": "echo", "payload": {"n": 1}},
    {"processor": "sleep", "payload": {"seconds": 1}},
]


def test_sigkill_a_worker_mid_run(cluster):
    cluster.start_all(workers=("w1", "w2"))
    submitter = Submitter(cluster.base, MIXED, interval=0.2)
    stream = submitter.run(40)
    victims = wait_until(lambda: cluster.running_on("w1"), timeout=60, interval=0.1, what="w1 to be running a run")
    cluster.signal("w1", signal.SIGKILL)
    cluster.procs["w1"].wait(timeout=10)
    cluster.start("worker", "w3")
    stream.join(timeout=120)
    ledger = cluster.settle(submitter)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger
    outcomes = cluster.query("SELECT outcome FROM run_attempts WHERE run_id = %s ORDER BY number", (victims[0],))
    assert outcomes[0][0] == "worker_lost" and outcomes[-1][0] == "succeeded", outcomes
    assert cluster.leftover_containers() == []


def test_restart_rabbitmq_while_submitting(cluster):
    cluster.start_all()
    submitter = Submitter(cluster.base, MIXED, interval=0.2)
    stream = submitter.run(50)
    time.sleep(3)
    services("down", "rabbitmq")
    time.sleep(2)
    services("up", "rabbitmq")
    stream.join(timeout=180)
    ledger = cluster.settle(submitter)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger


def test_restart_postgres_while_submitting_and_running(cluster):
    cluster.start_all()
    submitter = Submitter(cluster.base, MIXED, interval=0.2)
    stream = submitter.run(50)
    wait_until(lambda: cluster.running_on("w1") or cluster.running_on("w2"), timeout=60, interval=0.1, what="a run in progress")
    services("down", "postgres")
    down_at = time.monotonic()
    # While the database is away the API answers 503 at once.
    started = time.monotonic()
    resp = requests.post(f"{cluster.base}/v1/runs", json=MIXED[1], timeout=10)
    took = time.monotonic() - started
    assert resp.status_code == 503 and took < 2, (resp.status_code, took)
    time.sleep(max(0, 3 - (time.monotonic() - down_at)))
    services("up", "postgres")
    stream.join(timeout=180)
    ledger = cluster.settle(submitter)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger


def test_sigterm_every_process_type_under_load(cluster):
    cluster.start_all()
    submitter = Submitter(cluster.base, MIXED, interval=0.2)
    stream = submitter.run(40)
    wait_until(lambda: cluster.running_on("w1") or cluster.running_on("w2"), timeout=60, interval=0.1, what="a run in progress")
    for name in ("web", "w1", "w2", "scheduler"):
        cluster.signal(name, signal.SIGTERM)
    for name in ("web", "w1", "w2", "scheduler"):
        code = cluster.procs[name].wait(timeout=30)
        assert code == 0, f"{name} exited {code}:\n{cluster.log(name)}"
    cluster.start_all(workers=("w3", "w4"))
    stream.join(timeout=180)
    ledger = cluster.settle(submitter)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger
