"""A run over a concurrency quota stays queued and its message comes back later (the worker side, no Docker)."""

from __future__ import annotations

import datetime as dt

import docker.errors
import pytest

from actors.execution import Executor, RetryLater
from settings import Settings
from storage import run_states
from storage import runs as run_store
from storage.models import Processor, Run, utcnow
from storage.run_states import RunState
from tests.storage_cases import make_processor, make_run


class NoContainers:
    def run(self, *args, **kwargs):
        raise AssertionError("a run over its quota must not start a container")


class NoImages:
    """A Docker client without the pinned image: a claimed run is refused before any container."""

    class images:
        @staticmethod
        def get(name):
            raise docker.errors.ImageNotFound(name)

        @staticmethod
        def pull(repo, tag):
            raise docker.errors.NotFound(f"{repo}@{tag}")


@pytest.fixture
def executor(sqlite_db):
    make_processor()
    return Executor(settings=Settings(tenant_max_running=1), client=NoImages(), runner=NoContainers(), worker_name="w1")


def test_a_run_over_its_tenant_quota_waits_queued_with_growing_delays(executor):
    busy = make_run(tenant_id="acme")
    assert run_states.transition(busy.id, RunState.RUNNING, attempts=1) == "queued"
    waiting = make_run(tenant_id="acme")
    options: dict = {}
    delays = []
    for _ in range(6):
        with pytest.raises(RetryLater) as caught:
            executor.execute(waiting.id, options)
        delays.append(caught.value.delay)
        assert "tenant 'acme' has 1 run(s) running, its quota is 1" in str(caught.value)
    assert options["quota_waits"] == 6
    assert 750 <= delays[0] <= 1000 and 1500 <= delays[1] <= 2000 and 3000 <= delays[2] <= 4000
    assert all(7500 <= d <= 10_000 for d in delays[4:])  # capped
    stored = Run.get_by_id(waiting.id)
    assert (stored.state, stored.attempts) == ("queued", 0)
    # When its message is due is on the run: a lost hand-back is republished by the outbox.
    due = stored.next_attempt_at
    assert 7.5 <= (due - utcnow()).total_seconds() <= 10.5
    assert run_store.runs_to_republish(due + dt.timedelta(seconds=299), unpublished_grace=None, lease_grace=None, retry_grace=300) == []
    lost = run_store.runs_to_republish(due + dt.timedelta(seconds=301), unpublished_grace=None, lease_grace=None, retry_grace=300)
    assert [r.id for r in lost] == [waiting.id]
    # another tenant is not held back by acme's quota: claimed (then refused for want of the image)
    other = make_run(tenant_id="other")
    executor.execute(other.id, {})
    stored = Run.get_by_id(other.id)
    assert (stored.state, stored.attempts, stored.error_reason) == ("failed", 1, "image_refused")


def test_a_processor_at_its_concurrency_holds_back_every_tenant(executor):
    executor.quotas.default_tenant_limit = 0
    Processor.update(concurrency=1).where(Processor.name == "echo").execute()
    first = make_run(tenant_id="a")
    assert run_states.transition(first.id, RunState.RUNNING, attempts=1) == "queued"
    second = make_run(tenant_id="b")
    with pytest.raises(RetryLater, match="processor 'echo' has 1 run"):
        executor.execute(second.id, {})


def test_a_disabled_processors_queued_run_is_refused_without_waiting_for_a_quota(executor):
    busy = make_run(tenant_id="acme")
    assert run_states.transition(busy.id, RunState.RUNNING, attempts=1) == "queued"
    queued = make_run(tenant_id="acme")
    Processor.update(enabled=False).where(Processor.name == "echo").execute()
    executor.execute(queued.id, {})
    stored = Run.get_by_id(queued.id)
    assert (stored.state, stored.error_reason) == ("failed", "processor_disabled")
    assert "disabled" in stored.error_message


def test_a_run_whose_processor_is_gone_is_refused_without_waiting_for_a_quota(executor, sqlite_db):
    busy = make_run(tenant_id="acme")
    assert run_states.transition(busy.id, RunState.RUNNING, attempts=1) == "queued"
    orphan = make_run(tenant_id="acme")
    # Runs reference their processor; a database restored without it is the way this happens.
    sqlite_db.execute_sql("PRAGMA foreign_keys = OFF")
    Processor.delete().where(Processor.name == "echo").execute()
    executor.execute(orphan.id, {})
    stored = Run.get_by_id(orphan.id)
    assert (stored.state, stored.attempts, stored.error_reason) == ("failed", 1, "processor_missing")
    assert stored.error_message == "processor 'echo' not found"
