"""Two scheduler processes on Postgres, a schedule firing every minute, and the leader killed with
SIGKILL just before a fire: the other copy leads within 15 s, and every fire makes exactly one run."""

from __future__ import annotations

import datetime as dt
import signal
import time

import requests

from tests.conftest import unique, wait_until
from tests.e2e.test_procfile import free_port

TAKEOVER_BOUND_SECONDS = 15


def metric(port: int, series: str) -> float | None:
    """One sample of a process's /metrics (`name` or `name{labels}` as printed), or None."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def leader_gauge(port: int) -> float | None:
    return metric(port, "dockyard_scheduler_leader")


def sleep_until_second(second: float) -> None:
    """Sleep until the wall clock next shows `second` seconds past a minute."""
    time.sleep((second - time.time() % 60) % 60)


def parse(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.removesuffix("Z"))


def test_sigkill_the_scheduler_leader_just_before_a_fire(cluster):
    ports = {"s1": free_port(), "s2": free_port()}
    worker_port = free_port()
    cluster.start("web")
    cluster.start("worker", "w1", env={"DOCKYARD_WORKER_METRICS_PORT": str(worker_port)})
    for name, port in ports.items():
        cluster.start("scheduler", name, env={"DOCKYARD_SCHEDULER_METRICS_PORT": str(port)})
    cluster.wait_ready()
    leader = wait_until(lambda: next((n for n, p in ports.items() if leader_gauge(p) == 1), None), timeout=30, what="a leader")
    follower = next(n for n in ports if n != leader)
    assert leader_gauge(ports[follower]) == 0

    # Created 5 s before the minute turns: the leader's timers must be in step within that to fire on time.
    sleep_until_second(55)
    body = {"name": unique("every-minute"), "cron": "* * * * *", "processor": "echo", "payload": {"tick": True}}
    schedule = cluster.http.post(f"{cluster.base}/v1/schedules", json=body, timeout=10).json()

    def runs() -> list[dict]:
        resp = cluster.http.get(f"{cluster.base}/v1/runs", params={"schedule_id": schedule["id"]}, timeout=10)
        return sorted(resp.json()["items"], key=lambda r: r["scheduled_for"])

    [first] = wait_until(runs, timeout=70, what="the first fire")
    assert parse(first["scheduled_for"]) == parse(schedule["next_fire_at"])
    lateness = (parse(first["created_at"]) - parse(first["scheduled_for"])).total_seconds()
    assert lateness < 3, f"the first fire came {lateness:.1f}s late:\n{cluster.log(leader)}"

    # Kill the leader 3 s before the next fire: the follower must take over and make that fire.
    sleep_until_second(57)
    cluster.signal(leader, signal.SIGKILL)
    killed_at = time.monotonic()
    cluster.procs[leader].wait(timeout=10)
    wait_until(lambda: leader_gauge(ports[follower]) == 1, timeout=TAKEOVER_BOUND_SECONDS + 5, interval=0.2, what="the follower to lead")
    takeover = time.monotonic() - killed_at
    print(f"\nscheduler takeover after SIGKILL: {takeover:.1f}s")
    assert takeover < TAKEOVER_BOUND_SECONDS, cluster.log(follower)

    second_fire = parse(first["scheduled_for"]) + dt.timedelta(minutes=1)
    wait_until(lambda: len(runs()) >= 2, timeout=60, what="the fire after the kill")
    time.sleep(2)  # time for a doubled fire to show, if there were one
    fired = runs()
    assert [parse(r["scheduled_for"]) for r in fired][:2] == [parse(first["scheduled_for"]), second_fire], (fired, cluster.log(follower))
    times = [r["scheduled_for"] for r in fired]
    assert len(times) == len(set(times)), fired
    for run in fired:
        done = wait_until(
            lambda run=run: (
                (r := cluster.http.get(f"{cluster.base}/v1/runs/{run['id']}", timeout=10).json())["state"]
                not in ("queued", "running", "retrying")
                and r
            ),
            timeout=60,
            what=f"run {run['id']} to end",
        )
        assert done["state"] == "succeeded", done
    shown = cluster.http.get(f"{cluster.base}/v1/schedules/{schedule['id']}", timeout=10).json()
    fire_events = [e for e in shown["recent"] if e["kind"] == "fired"]
    assert len(fire_events) == len(fired), shown["recent"]

    # The new leader also sent the housekeeping at that minute, and the worker ran it.
    assert metric(ports[follower], 'dockyard_housekeeping_sent_total{actor="measure_queues"}') >= 1
    depth = f'dockyard_queue_messages{{queue="{cluster.queue}.normal"}}'
    wait_until(lambda: metric(worker_port, depth) is not None, timeout=30, what="the worker to measure the run queue")
