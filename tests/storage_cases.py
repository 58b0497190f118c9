"""Storage behaviour checked on every database backend (imported by unit and integration tests)."""

from __future__ import annotations

import datetime as dt
import re
import threading

import peewee

from storage import run_states, workers
from storage import runs as run_store
from storage.group_commit import GroupCommit
from storage.migrations import migrate, pending
from storage.models import RateBucket, Run, RunAttempt, RunEvent, RunLogChunk, ScheduleEvent, Tenant, utcnow
from storage.processors import put_processor
from storage.quotas import PROCESSOR, TENANT, OverQuota, Quota, QuotaBook, claim, set_tenant_quota
from storage.rate_limits import take_token
from storage.retention import delete_runs_ended_before
from storage.run_states import RunState
from storage.schedules import create_schedule

PIN = "127.0.0.1:5000/dockyard/echo@sha256:" + "a" * 64


def make_processor(name="echo"):
    put_processor(
        {
            "name": name,
            "image": PIN,
            "command": None,
            "timeout_seconds": 30,
            "cpus": 0.5,
            "memory_mb": 32,
            "pids": 16,
            "network": "none",
            "env": {},
            "queue": "runs",
            "concurrency": None,
            "retry": {},
            "enabled": True,
        },
        actor="test",
    )


def make_run(**kw):
    fields = {"processor": "echo", "queue": "runs", "priority": "normal", "payload": {"x": 1}, "labels": {}, "timeout_seconds": 30}
    fields.update(kw)
    return run_store.create_run(**fields)


def check_migrate_twice_is_a_no_op(db):
    assert migrate(db) == []
    assert pending(db) == []


def check_second_writer_loses(db, rounds=10):
    make_processor()
    for _ in range(rounds):
        run = make_run()
        assert run_states.transition(run.id, RunState.RUNNING) == "queued"
        barrier = threading.Barrier(2)
        results = {}

        def write(target, run_id=run.id, barrier=barrier, results=results):
            barrier.wait()
            results[target] = run_states.transition(run_id, target, finished_at=None)
            db.close()

        threads = [threading.Thread(target=write, args=(t,)) for t in (RunState.CANCELLED, RunState.SUCCEEDED)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [t for t, previous in results.items() if previous == "running"]
        assert len(winners) == 1, results
        assert [v for v in results.values() if v is None] == [None]
        assert run_store.get_run(run.id).state == winners[0]
        terminal_events = RunEvent.select().where((RunEvent.run == run.id) & (RunEvent.to_state.in_(list(run_states.TERMINAL))))
        assert terminal_events.count() == 1


def check_illegal_transition_is_refused(db):
    make_processor()
    run = make_run()
    assert run_states.transition(run.id, RunState.SUCCEEDED) is None
    assert run_store.get_run(run.id).state == "queued"
    assert run_states.transition(run.id, RunState.CANCELLED) == "queued"
    assert run_states.transition(run.id, RunState.RUNNING) is None
    events = [(e.from_state, e.to_state) for e in run_store.list_events(run.id)]
    assert events == [(None, "queued"), ("queued", "cancelled")]


def check_list_pages_newest_first(db):
    make_processor()
    ids = [make_run(labels={"team": "a" if i % 2 else "b"}).id for i in range(7)]
    page, cursor = run_store.list_runs(limit=3)
    seen = [r.id for r in page]
    while cursor:
        page, cursor = run_store.list_runs(limit=3, cursor=cursor)
        seen += [r.id for r in page]
    assert seen == list(reversed(ids))
    team_a, _ = run_store.list_runs(labels={"team": "a"}, limit=50)
    assert {r.id for r in team_a} == {ids[i] for i in range(7) if i % 2}


def check_withdraw_only_removes_unpublished(db):
    make_processor()
    fresh = make_run()
    published = make_run()
    assert run_store.mark_published([published.id]) == 1
    assert run_store.withdraw_unpublished(fresh.id)
    assert not run_store.withdraw_unpublished(published.id)
    assert [r.id for r in run_store.list_runs()[0]] == [published.id]


def check_created_run_reads_back_with_its_event(db):
    make_processor()
    run = make_run(payload={"nested": [1, "two"]}, labels={"team": "data"}, priority="high", max_attempts=3)
    stored = run_store.get_run(run.id)
    for field in ("id", "processor", "queue", "state", "priority", "payload", "labels", "timeout_seconds", "max_attempts", "attempts"):
        assert getattr(stored, field) == getattr(run, field), field
    assert stored.state == RunState.QUEUED and stored.published_at is None
    assert abs((stored.created_at - run.created_at).total_seconds()) < 0.001
    events = list(RunEvent.select().where(RunEvent.run == run.id))
    assert [(e.from_state, e.to_state) for e in events] == [(None, RunState.QUEUED)]


def _end(run, ended):
    run_states.transition(run.id, RunState.RUNNING, attempts=1, started_at=ended)
    attempt = run_store.start_attempt(run.id, 1, "w")
    run_store.finish_attempt(attempt.id, run_id=run.id, outcome="succeeded", exit_code=0, container_id=None, log_tail="")
    run_store.append_log(run.id, 1, "hello\n")
    run_states.transition(run.id, RunState.SUCCEEDED, finished_at=ended)


def check_attempt_end_is_recorded_once_with_the_runs_usage(db):
    make_processor()
    run = make_run()
    first = run_store.start_attempt(run.id, 1, "w")
    ended = {"outcome": "failed", "exit_code": 1, "container_id": "c1", "log_tail": "tail", "run_id": run.id}
    assert run_store.finish_attempt(first.id, cpu_seconds=1.5, peak_memory_bytes=2000, **ended)
    # Ended once: a second end (a lost-worker takeover racing the worker) neither records nor adds again.
    assert not run_store.finish_attempt(first.id, cpu_seconds=9.0, peak_memory_bytes=9000, **ended)
    second = run_store.start_attempt(run.id, 2, "w")
    assert run_store.finish_attempt(second.id, cpu_seconds=0.25, peak_memory_bytes=1000, **ended)
    stored = Run.get_by_id(run.id)
    assert (stored.cpu_seconds, stored.peak_memory_bytes) == (1.75, 2000)  # summed; the highest peak
    attempt = RunAttempt.get_by_id(first.id)
    assert (attempt.outcome, attempt.exit_code, attempt.container_id, attempt.log_tail) == ("failed", 1, "c1", "tail")
    assert (attempt.cpu_seconds, attempt.peak_memory_bytes) == (1.5, 2000) and attempt.finished_at is not None
    # An attempt whose usage was not measured leaves the totals as they are; one with no container keeps its id.
    third = run_store.start_attempt(run.id, 3, "w")
    run_store.set_attempt_container(third.id, "c3")
    unmeasured = {**ended, "container_id": None}
    assert run_store.finish_attempt(third.id, cpu_seconds=None, peak_memory_bytes=None, **unmeasured)
    assert (Run.get_by_id(run.id).cpu_seconds, Run.get_by_id(run.id).peak_memory_bytes) == (1.75, 2000)
    assert RunAttempt.get_by_id(third.id).container_id == "c3"
    fresh = make_run()
    only = run_store.start_attempt(fresh.id, 1, "w")
    assert run_store.finish_attempt(only.id, cpu_seconds=None, peak_memory_bytes=512, **{**ended, "run_id": fresh.id})
    assert (Run.get_by_id(fresh.id).cpu_seconds, Run.get_by_id(fresh.id).peak_memory_bytes) == (None, 512)


def check_rate_limit_grants_exactly_the_burst_to_racing_takers(db, racers=8, burst=5):
    granted, barrier = [], threading.Barrier(racers)

    def take():
        barrier.wait()
        granted.append(take_token("acme", 0.001, burst))
        db.close()

    threads = [threading.Thread(target=take) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(granted)[:burst] == [0.0] * burst  # taken
    assert all(wait > 100 for wait in sorted(granted)[burst:])  # refused: the next token is 1,000 s away
    assert take_token("other", 0.001, burst) == 0.0  # a bucket per tenant
    # At 10,000/s a take asks for a batch of 60 (a tenth of the burst): one write, then 59 handed out in-process.
    assert take_token("batched", 10_000, 600) == 0.0
    first = RateBucket.get_by_id("batched")
    assert first.tokens == 540
    assert [take_token("batched", 10_000, 600) for _ in range(59)] == [0.0] * 59
    assert RateBucket.get_by_id("batched").updated_at == first.updated_at
    assert take_token("batched", 10_000, 600) == 0.0
    assert RateBucket.get_by_id("batched").tokens <= 540  # the next batch (after what refilled meanwhile)


def check_retention_deletes_old_runs_with_all_their_rows(db):
    make_processor()
    now = utcnow()
    old = [make_run() for _ in range(7)]
    for run in old:
        _end(run, now - dt.timedelta(days=40))
    recent, still_queued = make_run(), make_run()
    _end(recent, now - dt.timedelta(days=1))
    fields = {"name": "s", "cron": "0 * * * *", "timezone": "UTC", "processor": "echo", "payload": {}, "priority": "normal"}
    schedule = create_schedule({**fields, "overlap": "allow", "catchup_window_seconds": 0, "paused": False}, actor="test")
    for days in (40, 1):
        ScheduleEvent.create(
            schedule=schedule.id, scheduled_for=now - dt.timedelta(days=days), kind="fired", at=now - dt.timedelta(days=days)
        )
    # A budget of one batch stops after it and says more remain; the next call goes on where it stopped.
    ticks = iter(range(100))
    first = delete_runs_ended_before(now - dt.timedelta(days=30), batch=3, budget_seconds=1, clock=lambda: next(ticks))
    assert first == (3, True)
    pauses = []
    assert delete_runs_ended_before(now - dt.timedelta(days=30), batch=3, sleep=pauses.append) == (4, False)
    assert len(pauses) == 1  # after the full batch; none after the short last one
    assert [e.at for e in ScheduleEvent.select()] == [now - dt.timedelta(days=1)]
    kept = {recent.id, still_queued.id}
    assert {r.id for r in Run.select()} == kept
    for table in (RunAttempt, RunEvent, RunLogChunk):
        assert {row.run_id for row in table.select()} <= kept, table
    assert RunLogChunk.select().where(RunLogChunk.run == recent.id).count() == 1


def check_quota_admits_no_more_than_its_limit_when_claims_race(db, rounds=4, racers=6):
    """Racing claims of one tenant's runs (on separate connections) never put more than the quota running."""
    make_processor()
    for round_ in range(rounds):
        quotas = [Quota(TENANT, f"t{round_}", 2), Quota(PROCESSOR, "echo", 3)]
        runs = [make_run(tenant_id=f"t{round_}") for _ in range(racers)]
        barrier = threading.Barrier(racers)
        outcomes = []

        def race(run_id, barrier=barrier, quotas=quotas, outcomes=outcomes):
            barrier.wait()
            try:
                outcomes.append(claim(run_id, quotas, expected_attempt=0, attempts=1))
            except OverQuota as exc:
                outcomes.append(exc.quota.kind)
            finally:
                db.close()

        threads = [threading.Thread(target=race, args=(r.id,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["queued", "queued", "tenant", "tenant", "tenant", "tenant"], outcomes
        assert Run.select().where((Run.tenant_id == f"t{round_}") & (Run.state == RunState.RUNNING)).count() == 2
        # the processor's quota (3) fills with the next tenant's runs
        for r in Run.select().where(Run.state == RunState.RUNNING):
            run_states.transition(r.id, RunState.SUCCEEDED)
    other = [make_run(tenant_id="other") for _ in range(4)]
    processor_only = [Quota(PROCESSOR, "echo", 3)]
    assert [claim(r.id, processor_only) for r in other[:3]] == ["queued"] * 3
    try:
        claim(other[3].id, processor_only)
        raise AssertionError("a fourth run of a processor with concurrency 3 was claimed")
    except OverQuota as exc:
        assert exc.quota.kind == PROCESSOR and exc.running == 3 and "quota is 3" in str(exc)


def check_tenant_quota_override_and_default(db):
    Tenant.create(id="acme")
    Tenant.create(id="plain")
    set_tenant_quota("acme", 5, actor="test")
    book = QuotaBook(default_tenant_limit=2, max_age_seconds=0)
    assert book.for_run(Run(tenant_id="acme", processor="echo"), None) == [Quota(TENANT, "acme", 5)]
    assert book.for_run(Run(tenant_id="plain", processor="echo"), 4) == [Quota(TENANT, "plain", 2), Quota(PROCESSOR, "echo", 4)]
    set_tenant_quota("acme", 0, actor="test")  # none for this tenant, whatever the default
    assert book.for_run(Run(tenant_id="acme", processor="echo"), None) == []
    assert QuotaBook(default_tenant_limit=0).for_run(Run(tenant_id="plain", processor="echo"), None) == []


def check_queued_runs_are_counted_by_priority(db):
    """What the scheduler's /metrics exports as dockyard_runs_queued and dockyard_oldest_queued_run_seconds."""
    from prometheus_client import CollectorRegistry, generate_latest

    from scheduling.metrics import QueuedRuns

    make_processor()
    old = make_run(priority="high")
    Run.update(created_at=utcnow() - dt.timedelta(minutes=10)).where(Run.id == old.id).execute()
    make_run(priority="high")
    make_run(priority="low")
    started = make_run(priority="critical")
    run_states.transition(started.id, RunState.RUNNING)
    waiting = run_store.queued_by_priority()
    assert {p: n for p, (n, _) in waiting.items()} == {"high": 2, "low": 1}
    assert 590 < (utcnow() - waiting["high"][1]).total_seconds() < 700

    registry = CollectorRegistry()
    registry.register(QueuedRuns())
    text = generate_latest(registry).decode()
    assert 'dockyard_runs_queued{priority="high"} 2.0' in text
    assert 'dockyard_runs_queued{priority="critical"} 0.0' in text
    assert 'dockyard_oldest_queued_run_seconds{priority="critical"} 0.0' in text
    age = float(re.search(r'dockyard_oldest_queued_run_seconds\{priority="high"\} (\S+)', text).group(1))
    assert 590 < age < 700


def _racing_inserts(group, fields_of, count):
    """`count` threads insert through `group` at once; return each one's run or exception, in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def insert(i):
        barrier.wait()
        try:
            results[i] = group.insert(**fields_of(i))
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def check_group_commit_inserts_concurrent_runs_together(db, count=24):
    """Runs submitted at once share statements, and each is committed with its event before its thread goes on."""
    make_processor()
    group = GroupCommit()
    base = {"processor": "echo", "queue": "runs", "priority": "normal", "labels": {}, "timeout_seconds": 30}
    try:
        runs = _racing_inserts(group, lambda i: {**base, "id": f"group{i:027d}", "payload": {"i": i}}, count)
    finally:
        group.close()
    assert all(isinstance(r, Run) for r in runs), runs
    assert group.inserted == count and group.batches < count  # some went together
    stored = {r.id: r for r in Run.select().where(Run.id.in_([r.id for r in runs]))}
    assert {r.id: r.payload for r in runs} == {i: r.payload for i, r in stored.items()}
    assert all(r.state == RunState.QUEUED for r in stored.values())
    events = RunEvent.select().where(RunEvent.run.in_(list(stored)))
    assert sorted(e.run_id for e in events) == sorted(stored) and {e.to_state for e in events} == {"queued"}


def check_group_commit_gives_each_run_its_own_answer(db, count=12):
    """A taken idempotency key fails only its own run, also when its batch had others; nothing half-written."""
    make_processor()
    make_run(tenant_id="t", idempotency_key="taken")
    group = GroupCommit()
    base = {"processor": "echo", "queue": "runs", "priority": "normal", "labels": {}, "timeout_seconds": 30, "tenant_id": "t"}
    try:
        keys = ["taken" if i % 4 == 0 else f"key-{i}" for i in range(count)]
        runs = _racing_inserts(group, lambda i: {**base, "idempotency_key": keys[i]}, count)
        again = group.insert(**base, idempotency_key="after")  # the writer goes on after a failed batch
    finally:
        group.close()
    for key, result in zip(keys, runs, strict=True):
        assert isinstance(result, peewee.IntegrityError) if key == "taken" else isinstance(result, Run), (key, result)
    assert Run.select().where(Run.tenant_id == "t").count() == 1 + count - keys.count("taken") + 1
    assert Run.get_by_id(again.id).idempotency_key == "after"
    assert RunEvent.select().count() == Run.select().count()


def check_workers_report_in_and_are_lost_when_silent(db):
    """Register, heartbeat, lost past 3 periods, a restart under the same name starts afresh, stop, forget."""
    t0 = dt.datetime(2026, 1, 1, 12)

    def registration(name, heartbeat_seconds=10):
        return workers.Registration(name, "host-a", 7, "unix:///var/run/docker.sock", "engine-a", 8, "0.1.0", heartbeat_seconds)

    workers.register_worker(registration("w1"), now=t0)
    workers.register_worker(registration("w2", heartbeat_seconds=5), now=t0)
    assert workers.heartbeat("w1", 3, "10.0.0.7:5672", now=t0 + dt.timedelta(seconds=25))
    states = {w.name: (s, w.busy, w.broker_node) for w, s in workers.list_workers(now=t0 + dt.timedelta(seconds=31))}
    assert states == {"w1": (workers.WorkerState.LIVE, 3, "10.0.0.7:5672"), "w2": (workers.WorkerState.LOST, 0, None)}
    workers.register_worker(registration("w2", heartbeat_seconds=5), now=t0 + dt.timedelta(seconds=40))
    workers.mark_stopped("w1", now=t0 + dt.timedelta(seconds=41))
    assert not workers.heartbeat("w1", 1, now=t0 + dt.timedelta(seconds=42))  # a stopped worker stays stopped
    now = t0 + dt.timedelta(seconds=42)
    assert [(w.name, s) for w, s in workers.list_workers(now=now)] == [("w2", workers.WorkerState.LIVE)]
    assert workers.count_by_state(now=now) == {workers.WorkerState.LIVE: 1, workers.WorkerState.LOST: 0, workers.WorkerState.STOPPED: 1}
    assert workers.forget_gone_workers(now=t0 + dt.timedelta(days=1, seconds=40)) == 1
    assert [w.name for w, _ in workers.list_workers(include_gone=True, now=now)] == ["w2"]

    # What the scheduler's /metrics exports as dockyard_workers: w2 has been silent since t0+40s.
    from prometheus_client import CollectorRegistry, generate_latest

    from scheduling.metrics import WorkerCount

    registry = CollectorRegistry()
    registry.register(WorkerCount())
    text = generate_latest(registry).decode()
    assert 'dockyard_workers{state="lost"} 1.0' in text and 'dockyard_workers{state="live"} 0.0' in text


CASES = [
    check_workers_report_in_and_are_lost_when_silent,
    check_attempt_end_is_recorded_once_with_the_runs_usage,
    check_rate_limit_grants_exactly_the_burst_to_racing_takers,
    check_group_commit_inserts_concurrent_runs_together,
    check_group_commit_gives_each_run_its_own_answer,
    check_queued_runs_are_counted_by_priority,
    check_quota_admits_no_more_than_its_limit_when_claims_race,
    check_tenant_quota_override_and_default,
    check_retention_deletes_old_runs_with_all_their_rows,
    check_created_run_reads_back_with_its_event,
    check_migrate_twice_is_a_no_op,
    check_second_writer_loses,
    check_illegal_transition_is_refused,
    check_list_pages_newest_first,
    check_withdraw_only_removes_unpublished,
]
