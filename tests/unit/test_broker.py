"""The broker's queues: one per priority level, sharing their run queue's dead-letter queue, classic or quorum."""

from __future__ import annotations

import pytest

from actors.broker import RUN_ACTOR_PRIORITIES, DockyardBroker, create_broker, level_queue, level_queues, run_queue_of
from settings import PRIORITY_LEVELS, Settings, SettingsError
from storage.specs import Priority


def test_level_queues_are_named_by_priority_highest_first():
    assert level_queues("runs") == ["runs.critical", "runs.high", "runs.normal", "runs.low"]
    assert level_queue("reports.eu", "low") == "reports.eu.low"
    assert [run_queue_of(n) for n in ("runs.high", "runs.high.DQ", "reports.eu.low", "housekeeping", "runs")] == [
        "runs",
        "runs",
        "reports.eu",
        None,
        None,
    ]
    assert set(PRIORITY_LEVELS) == {p.value for p in Priority}
    assert sorted(Priority, key=RUN_ACTOR_PRIORITIES.get) == [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_every_level_dead_letters_into_its_run_queues_xq(queue_type):
    broker = create_broker(Settings(queue_type=queue_type, queue_max_length=500))
    typed = {"x-queue-type": "quorum"} if queue_type == "quorum" else {}
    assert broker.run_queue_arguments("runs.high") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "runs.XQ",
        "x-max-length": 500,
        "x-overflow": "reject-publish",
        **typed,
    }
    assert broker.delay_queue_arguments("runs.low") == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "runs.XQ", **typed}
    # Other queues (housekeeping) keep Dramatiq's own dead-letter queue.
    assert broker.run_queue_arguments("housekeeping")["x-dead-letter-routing-key"] == "housekeeping.XQ"
    assert broker.dead_letter_queue_arguments() == {"x-message-ttl": 7 * 24 * 3600 * 1000, **typed}


def test_queue_type_and_housekeeping_name_are_checked():
    with pytest.raises(SettingsError, match="DOCKYARD_QUEUE_TYPE: must be one of classic, quorum"):
        Settings.from_env({"DOCKYARD_QUEUE_TYPE": "mirrored"})
    with pytest.raises(SettingsError, match=r"DOCKYARD_HOUSEKEEPING_QUEUE: must not end in \.low"):
        Settings.from_env({"DOCKYARD_HOUSEKEEPING_QUEUE": "ops.low"})
    with pytest.raises(ValueError, match="queue_type"):
        DockyardBroker(queue_max_length=1, queue_type="stream", url="amqp://127.0.0.1:9/%2F")
