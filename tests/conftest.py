"""Fixtures shared by every test layer."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from settings import Settings
from storage import rate_limits
from storage.database import open_database
from storage.migrations import migrate
from telemetry.tracing import use_provider

# In-process tests trace every span into memory: what the code under test records can be read back.
SPANS = InMemorySpanExporter()
_provider = TracerProvider(resource=Resource.create({"service.name": "dockyard-tests"}))
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
use_provider(_provider, exporting=True)


@pytest.fixture(autouse=True)
def spans() -> InMemorySpanExporter:
    """The spans finished during the test (read with .get_finished_spans()); emptied before each test."""
    SPANS.clear()
    return SPANS


@pytest.fixture(autouse=True)
def fresh_rate_limit_tokens(monkeypatch):
    """Tokens a test's requests took in a batch and did not use stay with that test's database."""
    monkeypatch.setattr(rate_limits, "_HELD", rate_limits._Held())


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def settings() -> Settings:
    return Settings(worker_name="test-worker")


@pytest.fixture
def sqlite_db(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/dockyard.db")
    migrate(db)
    yield db
    db.close()


def wait_ready(base: str, timeout: float = 60) -> None:
    """Wait until the API at `base` answers /readyz with 200."""
    import requests

    def ready():
        try:
            return requests.get(f"{base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=timeout, interval=0.25, what=f"{base}/readyz")


def key_headers(tenant: str = "default", scopes: str = "admin") -> dict[str, str]:
    """Authorization headers with a new API key of `tenant` (made in the current database)."""
    from storage.api_keys import create_key

    _, key = create_key(tenant, scopes, name="test", actor="test")
    return {"Authorization": f"Bearer {key}"}


def cli_key(env: dict[str, str], tenant: str = "default", scopes: str = "admin") -> str:
    """A new API key made with `dockyard keys create` in the database `env` names."""
    import pathlib
    import subprocess
    import sys

    made = subprocess.run(
        [pathlib.Path(sys.executable).parent / "dockyard", "keys", "create", "--tenant", tenant, "--scopes", scopes, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return made.stdout.strip()


def api_session(key: str):
    """A requests session that sends `key`, on a new connection each time (as plain requests.get does).

    NOTE: a kept-alive connection that gunicorn closed while idle fails the
    next request with RemoteDisconnected; requests does not retry it.
    """
    import requests

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {key}", "Connection": "close"})
    return session


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def required_env(name: str) -> str:
    """An integration setting the test set-up must provide: missing is a failure, never a skip."""
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(f"{name} is not set: run the suite with `make test`, which starts the services")
    return value


def stub_run_queue(broker, queue: str = "runs"):
    """Declare a run queue's level queues on a StubBroker (RabbitMQ's broker declares them on first use)."""
    from actors.broker import level_queues

    for name in level_queues(queue):
        broker.declare_queue(name)
    return broker


def published(broker, queue: str = "runs") -> list:
    """The messages a StubBroker holds in a run queue's level queues, highest level first."""
    from actors.broker import level_queues

    return [message for name in level_queues(queue) for message in list(broker.queues[name].queue)]


def parse_ts(value: str) -> dt.datetime:
    """An API timestamp (2026-11-22T10:00:00.000Z) as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def sample_processors() -> dict[str, dict]:
    """The sample processors built by infra/processors/build.sh, by name."""
    import yaml

    with open(required_env("TEST_PROCESSORS_MANIFEST")) as fh:
        return {p["name"]: p for p in yaml.safe_load(fh)["processors"]}
