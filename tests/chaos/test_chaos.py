"""Break things under load and count: nothing accepted is lost, ends twice, or stays unfinished.

Each test prints its ledger (`-s` shows it): runs accepted, refusals the
client retried, runs lost, runs that reached two terminal states, runs stuck.
"""

from __future__ import annotations

import signal
import time

from tests.chaos.conftest import Submitter, assert_nothing_lost, services
from tests.conftest import wait_until

MIXED = [
    {"processor": "sleep", "payload": {"seconds": 2}},
    {"processor": "echo", "payload": {"n": 1}},
    {"processor": "sleep", "payload": {"seconds": 1}},
]


def under_load(cluster, count: int, disrupt, workers=("w1", "w2")) -> dict:
    """Start everything, submit `count` runs at 5/s, call `disrupt()` meanwhile, then wait for every run to end."""
    cluster.start_all(workers=workers)
    submitter = Submitter(cluster.base, MIXED, interval=0.2, http=cluster.http)
    stream = submitter.run(count)
    disrupt()
    stream.join(timeout=180)
    ledger = cluster.settle(submitter)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger
    return ledger


def a_run_in_progress(cluster, *workers: str) -> list[str]:
    return wait_until(
        lambda: [r for w in workers for r in cluster.running_on(w)], timeout=60, interval=0.1, what=f"a run in progress on {workers}"
    )


def test_sigkill_a_worker_mid_run(cluster):
    victims = []

    def kill_w1():
        victims.extend(a_run_in_progress(cluster, "w1"))
        cluster.signal("w1", signal.SIGKILL)
        cluster.procs["w1"].wait(timeout=10)
        cluster.start("worker", "w3")

    under_load(cluster, 40, kill_w1)
    outcomes = cluster.query("SELECT outcome FROM run_attempts WHERE run_id = %s ORDER BY number", (victims[0],))
    assert outcomes[0][0] == "worker_lost" and outcomes[-1][0] == "succeeded", outcomes
    assert cluster.leftover_containers() == []


def test_restart_rabbitmq_while_submitting(cluster):
    def restart():
        time.sleep(3)
        services("down", "rabbitmq")
        time.sleep(2)
        services("up", "rabbitmq")

    under_load(cluster, 50, restart)


def test_restart_postgres_while_submitting_and_running(cluster):
    def restart():
        a_run_in_progress(cluster, "w1", "w2")
        services("down", "postgres")
        # While the database is away the API answers 503 at once.
        started = time.monotonic()
        resp = cluster.http.post(f"{cluster.base}/v1/runs", json=MIXED[1], timeout=10)
        took = time.monotonic() - started
        assert resp.status_code == 503 and took < 2, (resp.status_code, took)
        time.sleep(2)
        services("up", "postgres")

    under_load(cluster, 50, restart)


def test_sigterm_every_process_type_under_load(cluster):
    def stop_all_then_start_again():
        a_run_in_progress(cluster, "w1", "w2")
        for name in ("web", "w1", "w2", "scheduler"):
            cluster.signal(name, signal.SIGTERM)
        for name in ("web", "w1", "w2", "scheduler"):
            code = cluster.procs[name].wait(timeout=30)
            assert code == 0, f"{name} exited {code}:\n{cluster.log(name)}"
        cluster.start_all(workers=("w3", "w4"))

    under_load(cluster, 40, stop_all_then_start_again)
