"""The leader: APScheduler timers in step with the schedules table, the file lock, the campaign loop."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from scheduling.cron_jobs import CronJobs, ScheduleTrigger
from scheduling.leader import Leader
from scheduling.leadership import FileLeadership, PostgresLeadership, leadership_for
from storage import schedules as schedule_store
from storage.models import Run, Schedule, utcnow
from tests.conftest import wait_until
from tests.storage_cases import make_processor

T = dt.datetime
UTC = dt.UTC


def make_schedule(name: str, cron: str = "0 * * * *", created: dt.datetime | None = None, **changes) -> Schedule:
    fields = {
        "name": name,
        "cron": cron,
        "timezone": "UTC",
        "processor": "echo",
        "payload": {},
        "priority": "normal",
        "overlap": "allow",
        "catchup_window_seconds": 300,
        "paused": False,
        **changes,
    }
    return schedule_store.create_schedule(fields, now=created, actor="test")


def test_the_trigger_wakes_at_each_fire_and_once_on_the_autumn_change():
    trigger = ScheduleTrigger("30 2 * * *", "Europe/Berlin")
    first = T(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert trigger.get_next_fire_time(None, T(2026, 10, 24, 12, tzinfo=UTC)) == first
    # After the fire APScheduler asks again with the fire as `previous`: the 02:30 CET repeat is skipped.
    assert trigger.get_next_fire_time(first, first) == T(2026, 10, 26, 1, 30, tzinfo=UTC)
    # Asked long after a missed fire, it wakes at the next one after now (the fire itself catches up).
    assert trigger.get_next_fire_time(first, T(2026, 10, 27, 9, tzinfo=UTC)) == T(2026, 10, 28, 1, 30, tzinfo=UTC)


@pytest.fixture
def jobs(sqlite_db):
    make_processor("echo")
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)  # the jobs wait in it, never run
    fired = []
    yield CronJobs(scheduler, fired.append), scheduler
    scheduler.shutdown()


def job_times(scheduler) -> dict[str, dt.datetime]:
    return {job.id: job.next_run_time.astimezone(UTC).replace(tzinfo=None) for job in scheduler.get_jobs()}


def test_sync_adds_changes_wakes_and_removes_jobs(jobs):
    cron_jobs, scheduler = jobs
    now = utcnow()
    hourly = make_schedule("hourly", created=now)
    daily = make_schedule("daily", cron="0 3 * * *", created=now)
    assert cron_jobs.sync(schedule_store.firing_schedules(), now) == {"added": 2, "changed": 0, "removed": 0, "woken": 0}
    assert job_times(scheduler) == {hourly.id: hourly.next_fire_at, daily.id: daily.next_fire_at}
    assert cron_jobs.sync(schedule_store.firing_schedules(), now)["added"] == 0  # nothing changed: nothing touched

    # A PATCH through the API (a new updated_at and next_fire_at) replaces the job.
    changed = schedule_store.update_schedule(hourly, {**schedule_store.spec_of(hourly), "cron": "15 * * * *"}, actor="test")
    assert cron_jobs.sync(schedule_store.firing_schedules(), now)["changed"] == 1
    assert job_times(scheduler)[hourly.id] == changed.next_fire_at and changed.next_fire_at.minute == 15

    # Pausing removes the job; deleting too.
    schedule_store.update_schedule(changed, {**schedule_store.spec_of(changed), "paused": True}, actor="test")
    schedule_store.delete_schedule(daily, actor="test")
    assert cron_jobs.sync(schedule_store.firing_schedules(), now)["removed"] == 2
    assert scheduler.get_jobs() == []


def test_a_fire_left_undone_is_woken_again(jobs):
    cron_jobs, scheduler = jobs
    past = utcnow() - dt.timedelta(hours=2)
    schedule = make_schedule("hourly", created=past)
    now = utcnow()
    cron_jobs.sync(schedule_store.firing_schedules(), now)
    # The job ran and failed (the database was away): the schedule is still due, so the next sync wakes it.
    assert cron_jobs.sync(schedule_store.firing_schedules(), now)["woken"] == 1
    assert job_times(scheduler)[schedule.id] == schedule.next_fire_at


def test_one_file_lock_one_leader(tmp_path):
    path = str(tmp_path / "db.sqlite.scheduler.lock")
    first, second = FileLeadership(path), FileLeadership(path)
    assert first.try_acquire() and first.held()
    assert not second.try_acquire() and not second.held()
    first.release()
    assert second.try_acquire()
    assert open(path).read().strip().isdigit()  # the leader's pid, for operators
    (tmp_path / "db.sqlite.scheduler.lock").unlink()  # an operator's clean-up, say: the lock is no longer exclusive
    assert not second.held()
    second.release()


def test_the_lock_fits_the_database():
    assert isinstance(leadership_for("postgresql://u:p@db:5432/dockyard"), PostgresLeadership)
    sqlite = leadership_for("sqlite:///var/lib/dockyard/dockyard.db")
    assert isinstance(sqlite, FileLeadership) and sqlite.path == "var/lib/dockyard/dockyard.db.scheduler.lock"


def test_of_two_leaders_one_leads_fires_due_schedules_and_hands_over_when_stopped(new_dispatcher, sqlite_db, broker, tmp_path):
    make_processor("echo")
    # Created two minutes ago: its fire a minute ago is due, within the 300 s catch-up window.
    schedule = make_schedule("minutely", cron="* * * * *", created=utcnow() - dt.timedelta(minutes=2))
    lock = str(tmp_path / "scheduler.lock")
    leaders = [
        Leader(FileLeadership(lock), new_dispatcher(broker), name=name, sync_seconds=0.1, campaign_seconds=0.1, housekeeping=None)
        for name in ("a", "b")
    ]
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=leader.run, args=(stop,), daemon=True) for leader, stop in zip(leaders, stops, strict=True)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: any(lead.leading.is_set() for lead in leaders), timeout=5, what="a leader")
        leading = [i for i, lead in enumerate(leaders) if lead.leading.is_set()]
        assert len(leading) == 1
        wait_until(lambda: Run.select().where(Run.schedule_id == schedule.id).count() >= 1, timeout=5, what="the due fire's run")
        # Stop the leader: the other takes over.
        stops[leading[0]].set()
        threads[leading[0]].join(timeout=5)
        other = 1 - leading[0]
        wait_until(leaders[other].leading.is_set, timeout=5, what="the other scheduler to lead")
    finally:
        for stop in stops:
            stop.set()
        for t in threads:
            t.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    assert Run.select().where(Run.schedule_id == schedule.id).count() in (1, 2)  # one per fire (a minute may turn meanwhile)
    fires = [r.scheduled_for for r in Run.select().where(Run.schedule_id == schedule.id)]
    assert len(fires) == len(set(fires))
