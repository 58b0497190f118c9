"""Workers that report in: the presence thread, GET /v1/workers and `dockyard workers list`."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from actors import metrics
from actors.presence import WorkerPresence, engine_address
from cli.main import main
from storage import workers
from storage.models import Worker, utcnow
from tests.conftest import wait_until


class FakeEngine:
    def __init__(self, name: str | None = "engine-1"):
        self.name = name

    def info(self):
        if self.name is None:
            raise ConnectionError("engine down")
        return {"Name": self.name}


class FakeRunner:
    usage = None

    def __init__(self, engine: FakeEngine):
        self.client = engine
        self.listed = threading.Semaphore(0)

    def run_containers(self):
        self.listed.release()
        return []


def registration(name: str, seconds: int = 10) -> workers.Registration:
    return workers.Registration(name, "host-a", 42, "tcp://10.0.0.5:2376", "engine-a", 4, "0.1.0", seconds)


def test_engine_address_hides_credentials():
    assert engine_address("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"
    assert engine_address("tcp://user:secret@docker.internal:2376") == "tcp://docker.internal:2376"


def test_presence_registers_heartbeats_sweeps_and_stops(settings, sqlite_db):
    settings = settings.replace(worker_heartbeat_seconds=1)
    runner = FakeRunner(FakeEngine())
    presence = WorkerPresence(settings, runner, orphan_sweep_seconds=3600)
    metrics.THREADS_BUSY.set(2)
    try:
        presence.start(threads=5)
        assert runner.listed.acquire(timeout=10)  # the sweep at start
        row = wait_until(lambda: Worker.get_or_none(Worker.name == settings.worker_name), timeout=10, what="registration")
        assert (row.threads, row.engine, row.engine_name, row.heartbeat_seconds) == (5, settings.docker_url, "engine-1", 1)
        wait_until(lambda: Worker.get_by_id(settings.worker_name).busy == 2, timeout=10, what="a heartbeat")
        # A row forgotten while the worker lives (a long database outage): the next beat registers again.
        Worker.delete().execute()
        wait_until(lambda: Worker.get_or_none(Worker.name == settings.worker_name), timeout=10, what="registration again")
        assert not runner.listed.acquire(timeout=0)  # no second sweep before its period
    finally:
        metrics.THREADS_BUSY.set(0)
        presence.stop()
    stopped = Worker.get_by_id(settings.worker_name)
    assert stopped.stopped_at is not None and stopped.busy == 0
    assert workers.list_workers() == []


def test_a_worker_whose_engine_is_down_registers_without_its_name(settings, sqlite_db):
    presence = WorkerPresence(settings, FakeRunner(FakeEngine(None)))
    assert presence.registration(threads=2).engine_name is None


def test_workers_api_lists_live_and_lost_and_stopped_on_request(client):
    workers.register_worker(registration("w-live"))
    workers.register_worker(registration("w-lost", seconds=1), now=utcnow() - dt.timedelta(minutes=1))
    workers.register_worker(registration("w-stopped"))
    workers.mark_stopped("w-stopped")
    items = client.simulate_get("/v1/workers").json["items"]
    assert [(w["name"], w["state"]) for w in items] == [("w-live", "live"), ("w-lost", "lost")]
    assert items[0]["engine"] == "tcp://10.0.0.5:2376" and items[0]["last_seen_at"].endswith("Z")
    everyone = client.simulate_get("/v1/workers", params={"all": "true"}).json["items"]
    assert [w["state"] for w in everyone] == ["live", "lost", "stopped"]
    bad = client.simulate_get("/v1/workers", params={"all": "maybe"})
    assert bad.status_code == 400 and "all" in bad.text


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert main(["migrate"]) == 0


def test_cli_lists_workers_with_their_state(cli_db, capsys):
    workers.register_worker(registration("w-live"))
    workers.register_worker(registration("w-lost", seconds=1), now=utcnow() - dt.timedelta(minutes=5))
    workers.mark_stopped("w-live")
    workers.register_worker(registration("w-again"))
    capsys.readouterr()
    assert main(["workers", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["NAME", "STATE", "BUSY"]
    assert [line.split()[:2] for line in out[1:-1]] == [["w-again", "live"], ["w-lost", "lost"]]
    assert "0/4" in out[1] and "5m ago" in out[2] and "tcp://10.0.0.5:2376 (engine-a)" in out[1]
    assert out[-1] == "1 live of 2 shown"
    assert main(["workers", "list", "--all"]) == 0
    assert "w-live" in capsys.readouterr().out
