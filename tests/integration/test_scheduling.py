"""Schedules fired on Postgres, RabbitMQ and Docker with a controlled clock; the Postgres leader lock;
housekeeping actors on a real worker."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg2

from actors.broker import broker_queues
from actors.containers import ContainerRunner
from actors.housekeeping import Housekeeping
from actors.presence import WorkerPresence
from actors.queues import QueueAdmin
from scheduling.firing import Firer
from scheduling.leadership import PostgresLeadership
from storage import runs as run_store
from storage import workers
from storage.models import Run, Worker, utcnow
from storage.run_states import RunState
from tests.conftest import unique, wait_until

SEC = dt.timedelta(seconds=1)


def parse(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.removesuffix("Z"))


def create_schedule(stack, **changes) -> dict:
    body = {"name": unique("s"), "cron": "*/5 * * * *", "processor": "echo", "payload": {"from": "schedule"}, **changes}
    resp = stack.client.simulate_post("/v1/schedules", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json


def runs_of(stack, schedule: dict) -> list[dict]:
    return stack.client.simulate_get("/v1/runs", params={"schedule_id": schedule["id"]}).json["items"]


def test_a_schedule_fires_runs_that_succeed_pause_stops_it_and_trigger_fires_at_once(stack):
    schedule = create_schedule(stack)
    firer = Firer(stack.dispatcher)
    due = parse(schedule["next_fire_at"])
    assert firer.fire_due(schedule["id"], now=due + SEC) == [("fired", due)]
    [run] = runs_of(stack, schedule)
    done = stack.wait_state(run["id"])
    assert done["state"] == "succeeded" and done["result"] == {"from": "schedule"}, done
    assert parse(done["scheduled_for"]) == due and done["labels"] == {"schedule": schedule["name"]}

    paused = stack.client.simulate_post(f"/v1/schedules/{schedule['id']}/pause").json
    assert paused["next_fire_at"] is None
    assert firer.fire_due(schedule["id"], now=due + dt.timedelta(minutes=5) + SEC) == []
    assert len(runs_of(stack, schedule)) == 1

    resp = stack.client.simulate_post(f"/v1/schedules/{schedule['id']}/trigger")
    assert resp.status_code == 201, resp.text
    assert stack.wait_state(resp.json["id"])["state"] == "succeeded"
    shown = stack.client.simulate_get(f"/v1/schedules/{schedule['id']}").json
    assert [e["kind"] for e in shown["recent"]] == ["triggered", "fired"]


def a_sleeping_fire(stack, overlap: str) -> tuple[dict, Firer, dict, dt.datetime]:
    """A schedule of 30 s sleeps with this overlap policy, fired once; wait until its run sleeps.
    Return the schedule, the firer, the run and the next fire time."""
    schedule = create_schedule(stack, processor="sleep", payload={"seconds": 30}, overlap=overlap)
    firer = Firer(stack.dispatcher)
    first = parse(schedule["next_fire_at"])
    firer.fire_due(schedule["id"], now=first + SEC)
    [run] = runs_of(stack, schedule)
    stack.wait_state(run["id"], states={"running"})
    return schedule, firer, run, first + dt.timedelta(minutes=5)


def cancel_and_wait(stack, run: dict) -> None:
    stack.client.simulate_post(f"/v1/runs/{run['id']}/cancel")
    stack.wait_state(run["id"])


def test_forbid_skips_a_fire_while_the_last_run_sleeps(stack):
    schedule, firer, run, second = a_sleeping_fire(stack, "forbid")
    assert firer.fire_due(schedule["id"], now=second + SEC) == [("skipped_overlap", second)]
    assert len(runs_of(stack, schedule)) == 1
    cancel_and_wait(stack, run)


def test_replace_cancels_the_running_container_and_starts_the_new_run(stack):
    schedule, firer, old, second = a_sleeping_fire(stack, "replace")
    assert firer.fire_due(schedule["id"], now=second + SEC) == [("replaced", second), ("fired", second)]
    cancelled = stack.wait_state(old["id"])
    assert cancelled["state"] == "cancelled" and "replaced by the fire" in cancelled["error"]["message"]
    wait_until(lambda: not stack.containers_of(old["id"]), timeout=15, what="the replaced run's container to go")
    new = next(r for r in runs_of(stack, schedule) if r["id"] != old["id"])
    stack.wait_state(new["id"], states={"running"})
    cancel_and_wait(stack, new)


def test_two_leaders_on_postgres_make_one_run_per_fire(stack):
    schedule = create_schedule(stack)
    firers = [Firer(stack.dispatcher), Firer(stack.dispatcher)]
    first = parse(schedule["next_fire_at"])
    for n in range(5):
        at = first + dt.timedelta(minutes=5 * n)
        barrier = threading.Barrier(2)

        def fire(firer, at=at, barrier=barrier):
            barrier.wait()
            try:
                firer.fire_due(schedule["id"], now=at + SEC)
            finally:
                stack.db.close()

        threads = [threading.Thread(target=fire, args=(f,)) for f in firers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    fired = sorted(parse(r["scheduled_for"]) for r in runs_of(stack, schedule))
    assert fired == [first + dt.timedelta(minutes=5 * n) for n in range(5)]
    for run in runs_of(stack, schedule):
        assert stack.wait_state(run["id"])["state"] == "succeeded"


def test_the_postgres_lock_has_one_holder_and_frees_when_its_session_dies(stack):
    url = stack.settings.database_url
    first, second = PostgresLeadership(url), PostgresLeadership(url)
    try:
        assert first.try_acquire() and first.held()
        assert not second.try_acquire()
        # The leader's session dies (a killed process, a cut connection): the server frees the lock.
        admin = psycopg2.connect(url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (first.conn.get_backend_pid(),))
        admin.close()
        assert not first.held()
        assert wait_until(second.try_acquire, timeout=5, what="the second copy to take the lock")
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def make_ghost(stack) -> Run:
    """A run that a dead worker left `running` (attempt 1 open) under a lease that expired long ago."""
    ghost = Run.create(
        id=unique("ghost")[:32],
        tenant_id="default",
        processor="echo",
        queue=stack.settings.default_queue,
        state=RunState.RUNNING,
        priority="normal",
        payload={"ghost": 1},
        labels={},
        attempts=1,
        max_attempts=2,
        timeout_seconds=30,
        lease_owner="dead-worker",
        lease_expires_at=utcnow() - dt.timedelta(minutes=5),
        started_at=utcnow() - dt.timedelta(minutes=6),
        published_at=utcnow() - dt.timedelta(minutes=6),
    )
    run_store.start_attempt(ghost.id, 1, "dead-worker")
    return ghost


def housekeeping(stack) -> Housekeeping:
    return Housekeeping(stack.settings, stack.dispatcher, QueueAdmin(stack.broker))


def test_the_lease_reaper_gets_a_dead_workers_run_taken_over_and_retried(stack):
    ghost = make_ghost(stack)
    assert housekeeping(stack).reap_expired_leases() >= 1
    taken_over = stack.wait_state(ghost.id)
    assert taken_over["state"] == "succeeded" and taken_over["attempts"] == 2, taken_over
    attempts = stack.client.simulate_get(f"/v1/runs/{ghost.id}/attempts").json["items"]
    assert [a["outcome"] for a in attempts] == ["worker_lost", "succeeded"]


def test_a_worker_reports_in_and_sweeps_its_engine_at_start(stack, sample_processors):
    """WorkerPresence registers with the engine's name, and its first sweep removes containers of
    ended attempts only; stopping marks the worker stopped."""
    ended = stack.wait_state(stack.submit("echo", {"n": 1})["id"])
    image = sample_processors["echo"]["image"]
    leftover = stack.docker.containers.create(image, labels={"dockyard.run_id": ended["id"], "dockyard.attempt": "1"})
    stranger = stack.docker.containers.create(image, labels={"dockyard.run_id": "f" * 32, "dockyard.attempt": "1"})
    settings = stack.settings.replace(worker_name=unique("presence"), worker_heartbeat_seconds=1)
    presence = WorkerPresence(settings, ContainerRunner(stack.docker), orphan_min_age_seconds=0)
    try:
        presence.start(threads=3)
        wait_until(lambda: leftover.id not in _run_containers(stack), timeout=20)
        assert stranger.id in _run_containers(stack)  # not a run of this database: another Dockyard's, maybe
        ((row, state),) = [(w, s) for w, s in workers.list_workers() if w.name == settings.worker_name]
        assert state is workers.WorkerState.LIVE and row.threads == 3
        assert row.engine_name == stack.docker.info()["Name"]
        seen = row.last_seen_at
        wait_until(lambda: Worker.get_by_id(settings.worker_name).last_seen_at > seen, timeout=10)
    finally:
        presence.stop()
        stranger.remove(force=True)
    assert Worker.get_by_id(settings.worker_name).stopped_at is not None


def _run_containers(stack) -> set[str]:
    return {c.id for c in stack.docker.containers.list(all=True, sparse=True, filters={"label": "dockyard.run_id"})}


def test_queue_depths_are_measured(stack):
    depths = housekeeping(stack).measure_queues()
    queue = stack.settings.default_queue
    assert list(depths) == broker_queues(queue)
    assert set(depths) >= {f"{queue}.critical", f"{queue}.low.DQ", f"{queue}.XQ"}
    assert all(isinstance(n, int) and n >= 0 for n in depths.values())
