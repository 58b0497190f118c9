"""Fixtures of the API unit tests: falcon's TestClient on SQLite and dramatiq's StubBroker."""

import falcon.testing
import pytest
from dramatiq.brokers.stub import StubBroker

from actors.dispatch import Dispatcher
from tests.conftest import key_headers, stub_run_queue
from tests.storage_cases import make_processor
from web.app import create_app


@pytest.fixture
def broker():
    broker = StubBroker()
    stub_run_queue(broker)
    yield broker
    broker.close()


@pytest.fixture
def new_dispatcher():
    """Make dispatchers that are closed (their published-marks thread stopped) when the test ends."""
    made: list[Dispatcher] = []

    def make(broker) -> Dispatcher:
        made.append(Dispatcher(broker))
        return made[-1]

    yield make
    for dispatcher in made:
        dispatcher.close()


@pytest.fixture
def dispatcher(broker, new_dispatcher):
    return new_dispatcher(broker)


@pytest.fixture
def client(settings, sqlite_db, dispatcher):
    """The API with one registered processor, `echo`, sending an admin key of the tenant "default"."""
    make_processor("echo")
    return falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=dispatcher), headers=key_headers())
