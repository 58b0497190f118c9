"""Integration fixtures: real RabbitMQ, Postgres, Docker and the local registry.

`make test` starts the services and exports DOCKYARD_BROKER_URL,
TEST_POSTGRES_URL and TEST_PROCESSORS_MANIFEST; without them these tests
fail, they never skip.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import docker
import dramatiq
import falcon.testing
import pika
import psycopg2
import pytest

from actors.broker import broker_queues, create_broker
from actors.concurrency import prefetch_for
from actors.containers import ContainerRunner
from actors.dispatch import Dispatcher
from actors.engine import engine_client
from actors.execution import Executor
from actors.runs import declare_run_actors
from actors.usage import AttemptUsage
from settings import Settings
from storage import run_states
from storage.database import open_database
from storage.migrations import migrate
from storage.processors import parse_processor_spec, put_processor
from tests.conftest import key_headers, required_env, unique, wait_until
from web.app import create_app


@contextlib.contextmanager
def fresh_postgres_database():
    """Create an empty database on the test server; drop it afterwards."""
    server = required_env("TEST_POSTGRES_URL")
    name = unique("dockyard_test")

    def admin(statement: str) -> None:
        # A connection each time: the server may have restarted in between (tests/chaos).
        conn = psycopg2.connect(server)
        conn.autocommit = True
        conn.cursor().execute(statement)
        conn.close()

    admin(f"CREATE DATABASE {name}")
    base = server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_db():
    with fresh_postgres_database() as url:
        db = open_database(url, pool_size=4)
        migrate(db)
        yield db
        db.close_all()


@pytest.fixture(scope="session")
def docker_client():
    client = engine_client(Settings())  # the worker's own client, on the default engine
    client.ping()
    return client


def delete_queues(broker_url: str, queue: str) -> None:
    """Delete a run queue's broker queues, or a plain queue's (housekeeping) with its .DQ and .XQ."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    for name in {queue, f"{queue}.DQ", *broker_queues(queue)}:
        channel.queue_delete(name)
    connection.close()


@dataclass
class Stack:
    settings: Settings
    client: falcon.testing.TestClient
    broker: dramatiq.Broker
    docker: docker.DockerClient
    db: object = None
    dispatcher: Dispatcher | None = None  # the API's, closed with the stack

    def register(self, name: str, spec: dict) -> None:
        put_processor(parse_processor_spec(name, spec, self.settings), actor="test")

    def submit(self, processor: str, payload=None, **fields) -> dict:
        resp = self.client.simulate_post("/v1/runs", json={"processor": processor, "payload": payload or {}, **fields})
        assert resp.status_code == 201, resp.text
        return resp.json

    def get(self, run_id: str) -> dict:
        return self.client.simulate_get(f"/v1/runs/{run_id}").json

    def wait_state(self, run_id: str, states=run_states.TERMINAL, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (run := self.get(run_id))["state"] in states and run, timeout=timeout, what=f"run {run_id} to reach {sorted(states)}"
        )

    def containers_of(self, run_id: str) -> list:
        # sparse: no inspect of each, which fails when one is removed in between
        return self.docker.containers.list(all=True, sparse=True, filters={"label": f"dockyard.run_id={run_id}"})


@contextlib.contextmanager
def running_stack(sample_processors, docker_client, *, threads: int = 1, prefetch: int | None = None, **settings_changes):
    """API (TestClient) + a Dramatiq worker of `threads` threads, on a fresh Postgres database, RabbitMQ and Docker."""
    broker_url = required_env("DOCKYARD_BROKER_URL")
    with fresh_postgres_database() as url:
        settings = Settings(
            database_url=url, broker_url=broker_url, default_queue=unique("it_runs"), worker_name="it-worker", **settings_changes
        )
        db = open_database(settings.database_url, pool_size=8 + threads)
        migrate(db)
        broker = create_broker(settings)
        executor = Executor(
            settings=settings,
            client=docker_client,
            runner=ContainerRunner(docker_client, AttemptUsage.for_engine(docker_client.info())),
            worker_name="it-worker",
        )
        declare_run_actors(broker, executor, settings.default_queue)
        worker = dramatiq.Worker(broker, worker_threads=threads)
        # NOTE: what `dramatiq_queue_prefetch` does for the CLI worker.
        worker.queue_prefetch = prefetch_for(threads) if prefetch is None else prefetch
        worker.start()
        dispatcher = Dispatcher(broker)
        stack = Stack(
            settings,
            falcon.testing.TestClient(create_app(settings, db=db, dispatcher=dispatcher), headers=key_headers()),
            broker,
            docker_client,
            db,
            dispatcher,
        )
        for name, spec in sample_processors.items():
            stack.register(name, spec)
        try:
            yield stack
        finally:
            dispatcher.close()
            worker.stop()
            broker.close()
            delete_queues(broker_url, settings.default_queue)
            db.close_all()


@pytest.fixture(scope="module")
def stack(sample_processors, docker_client):
    """The API and a one-thread worker with the worker's own prefetch (2)."""
    with running_stack(sample_processors, docker_client) as stack:
        yield stack
