"""Housekeeping: periodiq specs, the skip of outdated messages, orphan decisions, retention."""

from __future__ import annotations

import datetime as dt
import json

import dramatiq
import pendulum
import pytest
from dramatiq.brokers.stub import StubBroker
from periodiq import cron

from actors.housekeeping import SkipOutdated
from actors.orphans import orphan_reason
from actors.periodic import HOUSEKEEPING, HousekeepingSender, period_seconds
from scheduling.housekeeping import add_housekeeping_timers, send_housekeeping


def test_periods():
    assert period_seconds(cron("* * * * *")) == 60
    assert period_seconds(cron("*/5 * * * *")) == 300
    assert period_seconds(cron("23 * * * *")) == 3600
    assert set(HOUSEKEEPING) == {
        "republish_unpublished",
        "reap_expired_leases",
        "delete_old_runs",
        "measure_queues",
    }


@pytest.mark.parametrize(
    ("label", "view", "orphan"),
    [
        ("1", None, None),  # not a run of ours: another Dockyard may share the engine
        ("1", ("succeeded", 1, None), "its run is succeeded"),
        ("1", ("retrying", 1, None), "its run is retrying"),
        ("1", ("running", 2, "w2"), "its attempt 1 is over (the run is on attempt 2)"),
        ("2", ("running", 2, "w2"), None),
    ],
)
def test_orphan_reason(label, view, orphan):
    assert orphan_reason(label, view) == orphan


def test_a_periodic_message_older_than_its_period_is_skipped():
    broker = StubBroker()
    broker.add_middleware(SkipOutdated())
    calls = []
    dramatiq.actor(lambda: calls.append(1), actor_name="tick", queue_name="housekeeping", broker=broker, periodic=cron("* * * * *"))
    now = pendulum.now("UTC")
    for age_seconds in (5, 61, 3600):
        message = dramatiq.Message(
            queue_name="housekeeping",
            actor_name="tick",
            args=(),
            kwargs={},
            options={"scheduled_at": str(now.subtract(seconds=age_seconds))},
        )
        broker.enqueue(message)
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    broker.join("housekeeping")
    worker.join()
    worker.stop()
    assert calls == [1]  # only the 5-second-old one ran


def test_the_leader_sends_each_housekeeping_actor_stamped_with_its_minute():
    broker = StubBroker()
    broker.declare_queue("hk")  # RabbitMQ's broker declares it on the first send
    sender = HousekeepingSender(broker, "hk")
    send_housekeeping(sender, "delete_old_runs", now=dt.datetime(2026, 1, 1, 10, 23, 0, 400, tzinfo=dt.UTC))
    [raw] = list(broker.queues["hk"].queue)
    message = json.loads(raw)
    assert message["actor_name"] == "delete_old_runs" and message["options"]["scheduled_at"] == "2026-01-01T10:23:00+00:00"
    with pytest.raises(ValueError, match="not a housekeeping actor"):
        sender.send("rm_rf", dt.datetime.now(dt.UTC))


def test_the_leader_has_a_timer_per_housekeeping_actor():
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.start(paused=True)
    try:
        ids = add_housekeeping_timers(scheduler, HousekeepingSender(StubBroker(), "hk"))
        assert sorted(ids) == sorted(f"housekeeping:{name}" for name in HOUSEKEEPING)
        retention = scheduler.get_job("housekeeping:delete_old_runs")
        assert retention.next_run_time.minute == 23
    finally:
        scheduler.shutdown()


class MondayMorning(HousekeepingSender):
    def schedule(self) -> dict[str, str]:
        return {"weekly": "0 9 * * 1", "sundays": "0 9 * * sun"}


def test_housekeeping_specs_are_read_as_cron_reads_weekdays():
    """1 is Monday and sun is Sunday, as in crontab(5) and schedules (APScheduler's from_crontab takes 1 for Tuesday)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.start(paused=True)
    try:
        add_housekeeping_timers(scheduler, MondayMorning(StubBroker(), "hk"))
        assert scheduler.get_job("housekeeping:weekly").next_run_time.strftime("%A %H:%M") == "Monday 09:00"
        assert scheduler.get_job("housekeeping:sundays").next_run_time.strftime("%A %H:%M") == "Sunday 09:00"
    finally:
        scheduler.shutdown()
