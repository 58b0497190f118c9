"""Firing schedules with a controlled clock: on time, caught up, missed, overlap policies, fencing, DST.

SQLite and dramatiq's StubBroker; every `now` is given explicitly.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import prometheus_client
import pytest

from scheduling.firing import Firer
from storage import run_states
from storage import runs as run_store
from storage import schedules as schedule_store
from storage.models import Run, Schedule, ScheduleEvent
from storage.processors import get_processor, put_processor
from storage.run_states import RunState
from tests.conftest import published
from tests.storage_cases import make_processor

T = dt.datetime
SEC = dt.timedelta(seconds=1)


def make_schedule(created: dt.datetime, **changes) -> Schedule:
    fields = {
        "name": "hourly",
        "cron": "0 * * * *",
        "timezone": "UTC",
        "processor": "echo",
        "payload": {"n": 1},
        "priority": "high",
        "overlap": "allow",
        "catchup_window_seconds": 300,
        "paused": False,
        **changes,
    }
    return schedule_store.create_schedule(fields, now=created, actor="test")


def sample(name: str, **labels) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def runs_of(schedule: Schedule) -> list[Run]:
    return list(Run.select().where(Run.schedule_id == schedule.id).order_by(Run.scheduled_for))


def kinds(schedule: Schedule) -> list[tuple[str, dt.datetime]]:
    events = ScheduleEvent.select().where(ScheduleEvent.schedule == schedule.id).order_by(ScheduleEvent.id)
    return [(e.kind, e.scheduled_for) for e in events]


@pytest.fixture
def firer(new_dispatcher, sqlite_db, broker):
    make_processor("echo")
    return Firer(new_dispatcher(broker))


def test_a_due_fire_makes_one_run_and_moves_next_fire_at(firer, broker):
    schedule = make_schedule(T(2026, 1, 1, 9, 30))
    assert schedule.next_fire_at == T(2026, 1, 1, 10)
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 9, 59)) == []  # not yet
    before = sample("dockyard_schedule_fires_total", kind="cron")

    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC) == [("fired", T(2026, 1, 1, 10))]
    [run] = runs_of(schedule)
    assert (run.scheduled_for, run.priority, run.payload, run.labels) == (T(2026, 1, 1, 10), "high", {"n": 1}, {"schedule": "hourly"})
    [message] = published(broker)
    assert json.loads(message)["args"] == [run.id]
    stored = Schedule.get_by_id(schedule.id)
    assert (stored.last_fired_at, stored.next_fire_at) == (T(2026, 1, 1, 10), T(2026, 1, 1, 11))
    assert sample("dockyard_schedule_fires_total", kind="cron") == before + 1
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + 5 * SEC) == []  # handled: nothing more


def test_two_leaders_firing_the_same_time_make_one_run(new_dispatcher, firer, broker):
    """The fence: a unique (schedule_id, scheduled_for). Two firers race on one fire time, many times."""
    other = Firer(new_dispatcher(broker))
    for hour in range(10, 16):
        schedule = make_schedule(T(2026, 1, 1, hour - 1, 30), name=f"race-{hour}")
        barrier = threading.Barrier(2)
        outcomes: list = []
        now = T(2026, 1, 1, hour) + SEC

        def fire(f, schedule_id, now, barrier, outcomes):
            barrier.wait()
            outcomes.append(f.fire_due(schedule_id, now=now))

        threads = [threading.Thread(target=fire, args=(f, schedule.id, now, barrier, outcomes)) for f in (firer, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(runs_of(schedule)) == 1, outcomes
        assert [k for k, _ in kinds(schedule)] == ["fired"]


def test_a_restarted_leader_that_fired_but_did_not_record_finds_the_run(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30))
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    # As if the leader died between the run's insert and the fire's record.
    ScheduleEvent.delete().execute()
    Schedule.update(next_fire_at=T(2026, 1, 1, 10)).execute()
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + 9 * SEC) == [("fired", T(2026, 1, 1, 10))]
    assert len(runs_of(schedule)) == 1
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 11)


def test_forbid_skips_while_a_run_has_not_ended_and_records_it(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), overlap="forbid")
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    before = sample("dockyard_schedule_skips_total", reason="overlap")
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 11) + SEC) == [("skipped_overlap", T(2026, 1, 1, 11))]
    assert len(runs_of(schedule)) == 1
    assert sample("dockyard_schedule_skips_total", reason="overlap") == before + 1
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 12)
    # Once the run has ended, the next fire runs.
    [first] = runs_of(schedule)
    run_store.cancel(first.id)
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 12) + SEC) == [("fired", T(2026, 1, 1, 12))]


def test_replace_cancels_the_running_one_then_fires(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), overlap="replace")
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    [first] = runs_of(schedule)
    run_states.transition(first.id, RunState.RUNNING, attempts=1)
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 11) + SEC) == [("replaced", T(2026, 1, 1, 11)), ("fired", T(2026, 1, 1, 11))]
    old, new = runs_of(schedule)
    old = run_store.get_run(old.id)
    assert old.state == "cancelled" and "replaced by the fire at 2026-01-01T11:00:00Z" in old.error_message
    assert new.state == "queued" and new.scheduled_for == T(2026, 1, 1, 11)


def test_allow_fires_alongside_a_running_one(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), overlap="allow")
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 11) + SEC)
    assert [r.state for r in runs_of(schedule)] == ["queued", "queued"]


def test_missed_fires_within_the_window_fire_once_and_older_ones_are_recorded_missed(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), catchup_window_seconds=7200)
    before = sample("dockyard_schedule_skips_total", reason="missed")
    catchups = sample("dockyard_schedule_fires_total", kind="catchup")
    # No leader from 10:00 until 13:10.
    done = firer.fire_due(schedule.id, now=T(2026, 1, 1, 13, 10))
    assert done == [("missed", T(2026, 1, 1, 10)), ("missed", T(2026, 1, 1, 12)), ("fired", T(2026, 1, 1, 13))]
    [run] = runs_of(schedule)
    assert run.scheduled_for == T(2026, 1, 1, 13)
    events = {e.scheduled_for: e.message for e in ScheduleEvent.select()}
    assert events[T(2026, 1, 1, 10)].startswith("2 fire times from 2026-01-01T10:00:00Z to 2026-01-01T11:00:00Z: outside")
    assert events[T(2026, 1, 1, 12)] == "2026-01-01T12:00:00Z: coalesced into the fire at 2026-01-01T13:00:00Z"
    assert events[T(2026, 1, 1, 13)] == "late, within the catch-up window"
    assert sample("dockyard_schedule_skips_total", reason="missed") == before + 3
    assert sample("dockyard_schedule_fires_total", kind="catchup") == catchups + 1
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 14)


def test_a_gap_longer_than_the_window_fires_nothing(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), catchup_window_seconds=0)
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 12, 5)) == [("missed", T(2026, 1, 1, 10))]
    assert runs_of(schedule) == []
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 13)


def test_a_week_of_missed_minutes_is_one_record(firer):
    schedule = make_schedule(T(2026, 1, 1, 0, 0, 30), cron="* * * * *", catchup_window_seconds=120)
    done = firer.fire_due(schedule.id, now=T(2026, 1, 8, 0, 0, 30))
    assert [k for k, _ in done] == ["missed", "missed", "fired"]
    [run] = runs_of(schedule)
    assert run.scheduled_for == T(2026, 1, 8, 0, 0)


def test_paused_and_deleted_schedules_do_not_fire(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), paused=True)
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC) == []
    assert firer.fire_due("no-such-schedule", now=T(2026, 1, 1, 10) + SEC) == []
    assert runs_of(schedule) == []


def test_a_disabled_processor_is_recorded_as_not_fired(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30))
    processor = get_processor("echo")
    put_processor(
        {**{f: getattr(processor, f) for f in processor._meta.fields if f not in ("created_at", "updated_at")}, "enabled": False},
        actor="test",
    )
    assert firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC) == [("not_fired", T(2026, 1, 1, 10))]
    assert runs_of(schedule) == []
    assert ScheduleEvent.get().message == "processor 'echo' is disabled"
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 11)


def fires_every_five_minutes(firer, schedule, start: dt.datetime, end: dt.datetime) -> list:
    """What fire_due records when called every 5 minutes from `start` to `end` (a leader's clock, controlled)."""
    fired, now = [], start
    while now < end:
        fired += firer.fire_due(schedule.id, now=now + SEC)
        now += dt.timedelta(minutes=5)
    return fired


def test_a_0230_berlin_job_fires_once_on_the_autumn_change(firer):
    schedule = make_schedule(T(2026, 10, 24, 12), cron="30 2 * * *", timezone="Europe/Berlin")
    # Across 25 October: 02:30 CEST (00:30 UTC) and, an hour later, 02:30 CET (01:30 UTC).
    fired = fires_every_five_minutes(firer, schedule, T(2026, 10, 24, 23, 0), T(2026, 10, 25, 23, 0))
    assert fired == [("fired", T(2026, 10, 25, 0, 30))]
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 10, 26, 1, 30)


def test_a_0230_berlin_job_fires_once_on_the_spring_change(firer):
    schedule = make_schedule(T(2026, 3, 28, 12), cron="30 2 * * *", timezone="Europe/Berlin")
    fired = fires_every_five_minutes(firer, schedule, T(2026, 3, 28, 23, 0), T(2026, 3, 29, 23, 0))
    # 02:30 does not exist that night: it runs once, as the clock jumps to 03:30 CEST (01:30 UTC).
    assert fired == [("fired", T(2026, 3, 29, 1, 30))]


@pytest.mark.parametrize("overlap", ["forbid", "replace"])
def test_a_second_leader_with_a_stale_view_neither_skips_nor_replaces_the_run_of_the_same_fire(
    new_dispatcher, firer, broker, monkeypatch, overlap
):
    schedule = make_schedule(T(2026, 1, 1, 9, 30), overlap=overlap)
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    [made] = runs_of(schedule)
    # Leader B read the schedule before A recorded the fire, and looked for the fire's run just before A made it.
    Schedule.update(next_fire_at=T(2026, 1, 1, 10)).execute()
    real, looks = schedule_store.run_of_fire, []

    def stale_first_look(*args):
        looks.append(args)
        return None if len(looks) == 1 else real(*args)

    monkeypatch.setattr(schedule_store, "run_of_fire", stale_first_look)
    other = Firer(new_dispatcher(broker))
    assert other.fire_due(schedule.id, now=T(2026, 1, 1, 10) + 2 * SEC) == [("fired", T(2026, 1, 1, 10))]
    assert [(r.id, r.state) for r in runs_of(schedule)] == [(made.id, "queued")]
    assert kinds(schedule) == [("fired", T(2026, 1, 1, 10))]
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 11)


def test_a_fire_time_set_back_after_it_was_recorded_is_moved_on_again(firer):
    """A PATCH from an API host whose clock lags may set next_fire_at back to a handled fire time."""
    schedule = make_schedule(T(2026, 1, 1, 9, 30))
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    Schedule.update(next_fire_at=T(2026, 1, 1, 10)).execute()
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + 3 * SEC)
    assert len(runs_of(schedule)) == 1
    assert Schedule.get_by_id(schedule.id).next_fire_at == T(2026, 1, 1, 11)


def test_a_patch_that_keeps_the_timing_keeps_a_due_fire(firer):
    schedule = make_schedule(T(2026, 1, 1, 9, 30))
    changed = schedule_store.update_schedule(
        schedule, {**schedule_store.spec_of(schedule), "payload": {"n": 2}}, now=T(2026, 1, 1, 10), actor="test"
    )
    assert changed.next_fire_at == T(2026, 1, 1, 10)
    firer.fire_due(schedule.id, now=T(2026, 1, 1, 10) + SEC)
    [run] = runs_of(schedule)
    assert run.payload == {"n": 2}
    # A new cron starts from now.
    retimed = schedule_store.update_schedule(
        changed, {**schedule_store.spec_of(changed), "cron": "30 * * * *"}, now=T(2026, 1, 1, 10, 5), actor="test"
    )
    assert retimed.next_fire_at == T(2026, 1, 1, 10, 30)
