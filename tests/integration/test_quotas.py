"""Concurrency quotas on the real services: a worker with threads to spare still runs no more than the quota."""

from __future__ import annotations

import pytest

from storage.quotas import set_tenant_quota
from storage.run_states import TERMINAL
from tests.conftest import key_headers, unique, wait_until
from tests.integration.conftest import running_stack

THREADS = 5


@pytest.fixture(scope="module")
def wide_stack(sample_processors, docker_client):
    """Five worker threads, each able to hold a message: without quotas, five runs go at once."""
    with running_stack(sample_processors, docker_client, threads=THREADS, prefetch=THREADS) as stack:
        yield stack


def running_intervals(stack, run_ids, headers) -> list[tuple[str, str]]:
    """(entered running, left running) of each run, from its recorded state changes."""
    intervals = []
    for run_id in run_ids:
        events = stack.client.simulate_get(f"/v1/runs/{run_id}/events", headers=headers).json["items"]
        start = None
        for event in events:
            if event["to_state"] == "running":
                start = event["at"]
            elif event["from_state"] == "running":
                intervals.append((start, event["at"]))
    return intervals


def most_at_once(intervals) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda p: (p[0], p[1]))
    peak = now = 0
    for _, step in points:
        now += step
        peak = max(peak, now)
    return peak


def submit_and_finish(stack, processor: str, count: int, seconds: int, headers) -> list[dict]:
    """Submit as a tenant (its own, new: no worker has its quota cached) and wait for every run to end."""
    ids = []
    for _ in range(count):
        resp = stack.client.simulate_post("/v1/runs", json={"processor": processor, "payload": {"seconds": seconds}}, headers=headers)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json["id"])

    def ended(run_id):
        run = stack.client.simulate_get(f"/v1/runs/{run_id}", headers=headers).json
        return run["state"] in TERMINAL and run

    return [wait_until(lambda run_id=run_id: ended(run_id), timeout=60, what=f"run {run_id} to end") for run_id in ids]


def test_tenant_quota_two_runs_five_sleeps_two_at_a_time(wide_stack):
    tenant = unique("quota")
    headers = key_headers(tenant)
    set_tenant_quota(tenant, 2, actor="test")
    runs = submit_and_finish(wide_stack, "sleep", 5, seconds=2, headers=headers)
    assert [r["state"] for r in runs] == ["succeeded"] * 5, runs  # waited, none failed
    assert all(r["attempts"] == 1 for r in runs)  # a wait is not an attempt
    intervals = running_intervals(wide_stack, [r["id"] for r in runs], headers)
    assert len(intervals) == 5
    assert most_at_once(intervals) == 2, intervals


def test_without_a_quota_the_same_worker_runs_them_together(wide_stack):
    """The control: the quota tests pass because of the quota, not a worker that could not go wider."""
    headers = key_headers(unique("free"))
    runs = submit_and_finish(wide_stack, "sleep", 4, seconds=2, headers=headers)
    assert [r["state"] for r in runs] == ["succeeded"] * 4
    assert most_at_once(running_intervals(wide_stack, [r["id"] for r in runs], headers)) >= 3


def test_processor_concurrency_one_runs_one_at_a_time(wide_stack, sample_processors):
    spec = {k: v for k, v in sample_processors["sleep"].items() if k != "name"}
    wide_stack.register("sleep-single", {**spec, "concurrency": 1})
    headers = key_headers(unique("single"))
    runs = submit_and_finish(wide_stack, "sleep-single", 3, seconds=1, headers=headers)
    assert [r["state"] for r in runs] == ["succeeded"] * 3, runs
    assert most_at_once(running_intervals(wide_stack, [r["id"] for r in runs], headers)) == 1
