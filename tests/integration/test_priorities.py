"""Under a backlog, runs start highest priority first, on classic and on quorum queues (one queue per
priority level: actors/broker.py). The chaos suite runs the same check on a three-node cluster."""

from __future__ import annotations

import pytest

from tests.conftest import parse_ts
from tests.integration.conftest import running_stack


def assert_runs_start_highest_priority_first(stack, count: int = 4) -> None:
    """A worker busy with one run; then `count` low, normal and critical runs, in that order: every critical run
    starts before any normal one, and every normal one before any low one."""
    blocker = stack.submit("sleep", {"seconds": 3})
    stack.wait_state(blocker["id"], {"running"}, timeout=60)
    low = [stack.submit("echo", {"i": i}, priority="low")["id"] for i in range(count)]
    normal = [stack.submit("echo", {"i": i}, priority="normal")["id"] for i in range(count)]
    critical = [stack.submit("echo", {"i": i}, priority="critical")["id"] for i in range(count)]
    finished = {run_id: stack.wait_state(run_id, timeout=90) for run_id in low + normal + critical}
    assert all(r["state"] == "succeeded" for r in finished.values()), finished
    started = {
        level: [parse_ts(finished[i]["started_at"]) for i in ids]
        for level, ids in (("low", low), ("normal", normal), ("critical", critical))
    }
    shown = {level: [t.time().isoformat() for t in sorted(times)] for level, times in started.items()}
    assert max(started["critical"]) < min(started["normal"]), shown
    assert max(started["normal"]) < min(started["low"]), shown


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_runs_start_highest_priority_first_in_a_backlog(sample_processors, docker_client, queue_type):
    with running_stack(sample_processors, docker_client, queue_type=queue_type) as stack:
        assert_runs_start_highest_priority_first(stack)
